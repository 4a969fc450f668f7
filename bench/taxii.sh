#!/usr/bin/env bash
# TAXII serving benchmark: builds a collection of N indicators (embedded source, one cycle),
# then measures on loopback
#   - a 1000-object objects page (first page and a deep page reached through `next`) with
#     wrk at fixed concurrency, beside nginx serving the same bytes as a static file;
#   - a whole-collection pull (every page, as Elastic does), gzip off and on;
#   - start-up: process start to the first successful TAXII page, snapshot on disk;
#   - RSS at idle and under load.
#
#   bash bench/taxii.sh 100000
#
# Needs wrk and nginx (apt-get install wrk nginx-light). BENCH_BIN skips the release build.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
duration=${BENCH_DURATION:-10}
conns=${BENCH_CONNECTIONS:-16}
bin=${BENCH_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --quiet
  bin=target/release/abuseipdb-ioc
fi
command -v wrk >/dev/null && command -v nginx >/dev/null || { echo "needs wrk and nginx (apt-get install wrk nginx-light)"; exit 1; }

work=$(mktemp -d)
chmod 755 "$work"  # nginx workers run as nobody
port=18471
static_port=18472
server_pid=""
nginx_conf="$work/nginx.conf"
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

export DATA_DIR=$work/data GEO_PROVIDERS=none LOG_LEVEL=warn AUTO_START_PROCESSING=false
export API_PORT=$port IOC_PROCESSING_INTERVAL=86400 PREPROCESSING_TTL=86400 API_RATE_LIMIT=0
python3 - "$n" > "$work/rows.csv" <<'PY'
import sys
n = int(sys.argv[1])
print("ip_address,confidence,categories")
for i in range(n):
    conf = 40 + (i * 7) % 61
    print(f"{11 + i // 65536 % 200}.{(i >> 8) % 256}.{i % 256}.{1 + (i * 13) % 250},{conf},18;22")
PY
sed -i 's/18;22/"18,22"/' "$work/rows.csv"
"$bin" import "$work/rows.csv" >/dev/null
build_s=$( { /usr/bin/env time -f %e "$bin" preprocess >/dev/null; } 2>&1 | tail -1 ) || build_s="?"

start_ns=$(date +%s%N)
"$bin" serve >/dev/null 2>"$work/server.log" &
server_pid=$!
base="http://127.0.0.1:$port/taxii2/iocs/collections/ioc-indicators/objects/"
until curl -sf -o /dev/null "$base?limit=1"; do sleep 0.005; done
startup_ms=$(( ($(date +%s%N) - start_ns) / 1000000 ))

curl -s "$base?limit=1000" -o "$work/first.json"
deep_url=$(python3 - "$base" <<'PY'
import json, sys, urllib.request, urllib.parse
base = sys.argv[1]
url = base + "?limit=1000"
for _ in range(49):
    page = json.load(urllib.request.urlopen(url))
    if not page.get("more"):
        break
    url = base + "?limit=1000&next=" + urllib.parse.quote(page["next"])
print(url)
PY
)
curl -s "$deep_url" -o "$work/deep.json"
mkdir -p "$work/www"
cp "$work/first.json" "$work/www/page.json"
cat > "$nginx_conf" <<CONF
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  types { application/taxii+json json; }
  server { listen 127.0.0.1:$static_port; root $work/www; }
}
CONF
nginx -c "$nginx_conf"
for _ in $(seq 500); do curl -sf -o /dev/null "http://127.0.0.1:$static_port/page.json" && break; sleep 0.01; done

rss() { awk '/VmRSS/ {print $2/1024}' "/proc/$server_pid/status"; }
idle_rss=$(rss)
run_wrk() { wrk -t2 -c"$conns" -d"${duration}s" --latency "$1" 2>/dev/null; }
summarise() { awk '/Requests\/sec/ {rps=$2} /^ +99%/ {p99=$2} END {printf "%s req/s, p99 %s", rps, p99}'; }
first=$(run_wrk "$base?limit=1000" | summarise)
load_rss=$(rss)
deep=$(run_wrk "$deep_url" | summarise)
static=$(run_wrk "http://127.0.0.1:$static_port/page.json" | summarise)

pull() { # prints seconds, pages and bytes of a whole-collection walk
  python3 - "$base" "$1" <<'PY'
import gzip, json, sys, time, urllib.parse, urllib.request
base, use_gzip = sys.argv[1], sys.argv[2] == "gzip"
url, pages, size, t = base + "?limit=1000", 0, 0, time.perf_counter()
while True:
    req = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"} if use_gzip else {})
    raw = urllib.request.urlopen(req).read()
    size += len(raw)
    body = json.loads(gzip.decompress(raw) if use_gzip else raw)
    pages += 1
    if not body.get("more"):
        break
    url = base + "?limit=1000&next=" + urllib.parse.quote(body["next"])
print(f"{time.perf_counter() - t:.2f} s, {pages} pages, {size / 1e6:.1f} MB")
PY
}
pull_plain=$(pull plain)
pull_gzip=$(pull gzip)

rps() { echo "$1" | awk '{print $1}'; }
echo "collection: $n indicators (cycle ${build_s} s); page body $(stat -c %s "$work/first.json") bytes"
echo "  first page (limit 1000)   $first"
echo "  deep page (via next)      $deep"
echo "  nginx, same bytes         $static"
python3 -c "f,d,s=$(rps "$first"),$(rps "$deep"),$(rps "$static"); print(f'  ratio first/nginx {f/s:.2f}, deep/first {d/f:.2f}')"
echo "  whole pull, gzip off      $pull_plain"
echo "  whole pull, gzip on       $pull_gzip"
echo "  start-up to first page    ${startup_ms} ms"
echo "  RSS idle / under load     ${idle_rss} MB / ${load_rss} MB"
echo "  RSS peak of the whole run $(awk '/VmHWM/ {print $2/1024}' "/proc/$server_pid/status") MB (wrk runs and both whole pulls)"
