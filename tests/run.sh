#!/usr/bin/env bash
# The whole test suite: the Rust tests (unit and integration, against a throwaway
# PostgreSQL), then the interoperability checks that need Python tools, if present.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --locked --all-targets

for extra in tests/interop/run.sh tests/browser/run.sh; do
  if [ -x "$extra" ] || [ -f "$extra" ]; then
    echo "== $extra"
    bash "$extra"
  fi
done
