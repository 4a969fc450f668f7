#!/usr/bin/env bash
# The whole test suite: the Rust tests (unit and integration, against a throwaway
# PostgreSQL and the real HTTP server), then the checks driven by outside tools: the TAXII
# interoperability walk (OASIS taxii2-client and STIX validators, in a Python venv) and,
# when present, the browser test of the status page.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --locked --all-targets

bin="${CARGO_TARGET_DIR:-target}/debug/abuseipdb-ioc"
echo "== TAXII interoperability (tests/interop)"
bash tests/interop/run.sh "$bin"

if [ -f tests/browser/run.sh ]; then
  echo "== status page in a browser (tests/browser)"
  bash tests/browser/run.sh "$bin"
fi
