#!/usr/bin/env bash
# Refresh-cycle benchmark: loads N generated rows into PostgreSQL with COPY, times
# `COPY (SELECT …) TO STDOUT` on the same table, then runs one cycle (first) and a second one
# over the unchanged rows, and prints rows per second, peak RSS and the ratios.
#
#   bash bench/cycle.sh 100000 1000000
#
# BENCH_DATABASE_URL names a server whose role may create a database (default: the local
# server on 127.0.0.1:5432 as postgres). Geolocation and AbuseIPDB are off: this measures
# the source → pipeline → store path.
set -euo pipefail
cd "$(dirname "$0")/.."
server=${BENCH_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/postgres}
db=ioc_bench
url=${server%/*}/$db

bin=${BENCH_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --quiet
  bin=target/release/abuseipdb-ioc
fi
out=bench/out
mkdir -p "$out"

peak_rss() { # runs a command, prints "seconds peak_rss_mb" on fd 3
  python3 - "$@" 3>&1 1>&2 <<'PY'
import resource, subprocess, sys, time
t = time.perf_counter()
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
dt = time.perf_counter() - t
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
with open(3, "w") as fd:
    fd.write("%.3f %.1f\n" % (dt, rss))
PY
}

for n in "$@"; do
  psql -q "$server" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
  psql -q "$url" -c "CREATE TABLE reported_ips (ip_address varchar(45) PRIMARY KEY, reported_at timestamptz NOT NULL, report_id varchar(255), categories jsonb, confidence integer, created_at timestamptz DEFAULT now())" >/dev/null
  python3 bench/gen_rows.py "$n" > "$out/rows.csv"
  psql -q "$url" -c "\\copy reported_ips (ip_address, reported_at, report_id, categories, confidence, created_at) FROM '$out/rows.csv' WITH (FORMAT csv)"
  psql -q "$url" -c "VACUUM ANALYZE reported_ips" >/dev/null
  rows=$(psql -At "$url" -c "SELECT count(*) FROM reported_ips")

  copy_s=$(python3 - "$url" <<'PY'
import subprocess, sys, time
t = time.perf_counter()
subprocess.run(["psql", "-q", sys.argv[1], "-c",
  "COPY (SELECT ip_address, reported_at, report_id, categories, confidence, created_at FROM reported_ips) TO STDOUT"],
  check=True, stdout=subprocess.DEVNULL)
print("%.3f" % (time.perf_counter() - t))
PY
)
  data=$(mktemp -d)
  export DATA_DIR=$data DATABASE_URL=$url GEO_PROVIDERS=none LOG_LEVEL=warn
  read -r first_s first_rss < <(peak_rss "$bin" preprocess)
  read -r again_s again_rss < <(peak_rss "$bin" preprocess)
  unset DATA_DIR DATABASE_URL GEO_PROVIDERS LOG_LEVEL
  rm -rf "$data"
  python3 - "$rows" "$copy_s" "$first_s" "$first_rss" "$again_s" "$again_rss" <<'PY'
import sys
rows, copy_s, first_s, first_rss, again_s, again_rss = sys.argv[1:]
rows = int(rows); copy_s, first_s, again_s = float(copy_s), float(first_s), float(again_s)
print(f"rows={rows}")
print(f"  COPY TO STDOUT           {copy_s:8.3f} s")
print(f"  first cycle              {first_s:8.3f} s  {rows/first_s:10.0f} rows/s  peak RSS {first_rss} MB  ratio {first_s/copy_s:.2f}x COPY")
print(f"  unchanged second cycle   {again_s:8.3f} s  {rows/again_s:10.0f} rows/s  peak RSS {again_rss} MB  ratio {again_s/copy_s:.2f}x COPY")
PY
done
