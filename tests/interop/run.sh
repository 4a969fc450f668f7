#!/usr/bin/env bash
# Interoperability run: serves a few thousand generated indicators with the real binary and
# walks them with the OASIS taxii2-client, stix2-validator, stix2-patterns and stix2.
# Usage: tests/interop/run.sh [path/to/abuseipdb-ioc]   (default: cargo build --release)
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
venv="$target/interop-venv"

if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet taxii2-client stix2-validator stix2-patterns stix2 pytest requests
fi

if [[ $# -ge 1 ]]; then
    bin="$1"
else
    (cd "$root" && cargo build --release --quiet)
    bin="$target/release/abuseipdb-ioc"
fi

data="$(mktemp -d)"
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$data"
}
trap cleanup EXIT

# ~3000 public addresses: IPv4 in 45.0.0.0/8 and every tenth one IPv6 in 2a00:1450::/32.
"$venv/bin/python" - "$data/reports.csv" <<'PY'
import csv, sys
with open(sys.argv[1], "w", newline="") as out:
    w = csv.writer(out)
    w.writerow(["ip_address", "confidence", "categories", "report_id"])
    for i in range(3000):
        ip = f"2a00:1450:{i // 256 + 1:x}::{i % 256 + 1:x}" if i % 10 == 9 \
            else f"45.{20 + i // 60000}.{(i // 250) % 240 + 1}.{i % 250 + 1}"
        cats = ",".join(str(c) for c in sorted({18, 14 + i % 9, 4 + i % 3}))
        w.writerow([ip, 40 + (i * 7) % 61, cats, f"interop-{i}"])
PY

port="$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
export DATA_DIR="$data" API_KEYS=test-key GEO_PROVIDERS=none AUTO_START_PROCESSING=false
export API_HOST=127.0.0.1 API_PORT="$port"

"$bin" import "$data/reports.csv"
"$bin" preprocess
"$bin" serve >"$data/server.log" 2>&1 &
server_pid=$!

for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1; then
        break
    fi
    sleep 0.1
done

export TAXII_URL="http://127.0.0.1:$port/taxii2/" TAXII_KEY=test-key
status=0
"$venv/bin/python" -m pytest -q "$root/tests/interop/test_taxii_interop.py" || status=$?
if [[ $status -ne 0 ]]; then
    tail -n 50 "$data/server.log" >&2
fi
exit "$status"
