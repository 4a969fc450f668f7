#!/usr/bin/env bash
# Refresh-cycle benchmark: loads N generated rows into PostgreSQL with COPY, times
# `COPY (SELECT …) TO STDOUT` on the same table, seeds the data directory with a geolocation
# cache entry for every public address and an AbuseIPDB blacklist (examples/bench_seed.rs),
# then runs one cycle (first) and a second one over the unchanged rows, and prints rows per
# second, peak RSS and the ratios, plus the "disk floor": the time to write the first
# snapshot's size in bytes durably with dd.
#
#   bash bench/cycle.sh 100000 1000000
#
# BENCH_DATABASE_URL names a server whose role may create a database (default: the local
# server on 127.0.0.1:5432 as postgres). BENCH_BIN and BENCH_SEED_BIN name prebuilt binaries
# (default: release builds in cargo's target directory); BENCH_BLACKLIST the blacklist size
# (default 10000). Geolocation providers and the AbuseIPDB key are off, so no network is
# used: the cycle answers geolocation from the seeded cache and merges the seeded blacklist.
set -euo pipefail
cd "$(dirname "$0")/.."
server=${BENCH_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/postgres}
db=ioc_bench
url=${server%/*}/$db
blacklist=${BENCH_BLACKLIST:-10000}

target_dir() {
  cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])'
}

bin=${BENCH_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --quiet
  bin=$(target_dir)/release/abuseipdb-ioc
fi
seed=${BENCH_SEED_BIN:-}
if [ -z "$seed" ]; then
  cargo build --release --quiet --example bench_seed
  seed=$(target_dir)/release/examples/bench_seed
fi
out=bench/out
mkdir -p "$out"

peak_rss() { # runs a command with its stdout in file $1, prints "seconds peak_rss_mb" on fd 3
  python3 - "$@" 3>&1 1>&2 <<'PY'
import resource, subprocess, sys, time
t = time.perf_counter()
with open(sys.argv[1], "w") as out:
    subprocess.run(sys.argv[2:], check=True, stdout=out)
dt = time.perf_counter() - t
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
with open(3, "w") as fd:
    fd.write("%.3f %.1f\n" % (dt, rss))
PY
}

disk_floor() { # writes $2 MiB of zeros to a new file in directory $1 with fsync, prints seconds
  python3 - "$@" <<'PY'
import os, subprocess, sys, time
path = os.path.join(sys.argv[1], "disk-floor.tmp")
t = time.perf_counter()
subprocess.run(["dd", "if=/dev/zero", "of=" + path, "bs=1M", "count=" + sys.argv[2],
  "conv=fsync", "status=none"], check=True)
print("%.3f" % (time.perf_counter() - t))
os.remove(path)
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
  export DATA_DIR=$data DATABASE_URL=$url GEO_PROVIDERS=none ABUSEIPDB_API_KEY= LOG_LEVEL=warn
  read -r seed_s _ < <(peak_rss "$out/seed.txt" "$seed" "$out/rows.csv" "$blacklist")
  read -r first_s first_rss < <(peak_rss "$out/first.txt" "$bin" preprocess)
  mib=$(( ($(stat -c %s "$data/state.redb") + 1048575) / 1048576 ))
  read -r again_s again_rss < <(peak_rss "$out/again.txt" "$bin" preprocess)
  unset DATA_DIR DATABASE_URL GEO_PROVIDERS ABUSEIPDB_API_KEY LOG_LEVEL
  floor_s=$(disk_floor "$data" "$mib")
  rm -rf "$data"
  python3 - "$rows" "$copy_s" "$first_s" "$first_rss" "$again_s" "$again_rss" "$seed_s" "$(cat "$out/seed.txt")" "$mib" "$floor_s" <<'PY'
import sys
rows, copy_s, first_s, first_rss, again_s, again_rss, seed_s, seeded, mib, floor_s = sys.argv[1:]
rows = int(rows); copy_s, first_s, again_s = float(copy_s), float(first_s), float(again_s)
seed_s, floor_s = float(seed_s), float(floor_s)
print(f"rows={rows}")
print(f"  COPY TO STDOUT           {copy_s:8.3f} s")
print(f"  seed (not a cycle)       {seed_s:8.3f} s  {seeded}")
print(f"  first cycle              {first_s:8.3f} s  {rows/first_s:10.0f} rows/s  peak RSS {first_rss} MB  ratio {first_s/copy_s:.2f}x COPY")
print(f"  unchanged second cycle   {again_s:8.3f} s  {rows/again_s:10.0f} rows/s  peak RSS {again_rss} MB  ratio {again_s/copy_s:.2f}x COPY")
print(f"  disk floor               {floor_s:8.3f} s  dd {mib} MiB conv=fsync (state.redb after the first cycle)  first cycle {first_s/floor_s:.2f}x floor")
PY
done
