#!/usr/bin/env bash
# Runs appliance/install.sh twice into a scratch DESTDIR and checks the tree, that the second
# run keeps an edited config.toml, and (where systemd-analyze exists) that the units verify.
set -euo pipefail
cd "$(dirname "$0")/../.."

root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
fake_bin="$root.bin"
printf '#!/bin/sh\necho abuseipdb-ioc\n' >"$fake_bin"
chmod +x "$fake_bin"
trap 'rm -rf "$root" "$fake_bin"' EXIT

fail() { echo "appliance install check: $*" >&2; exit 1; }

DESTDIR="$root" bash appliance/install.sh "$fake_bin" >/dev/null
echo "# edited by the operator" >>"$root/etc/abuseipdb-ioc/config.toml"
DESTDIR="$root" bash appliance/install.sh "$fake_bin" >/dev/null

for path in usr/local/bin/abuseipdb-ioc etc/systemd/system/abuseipdb-ioc.service \
  etc/abuseipdb-ioc/config.toml etc/abuseipdb-ioc/env var/lib/abuseipdb-ioc \
  usr/share/abuseipdb-ioc/elastic-ingest-pipeline.json \
  usr/share/abuseipdb-ioc/abuseipdb-ioc-firewall.timer; do
  [ -e "$root/$path" ] || fail "missing $path"
done
[ -x "$root/usr/local/bin/abuseipdb-ioc" ] || fail "binary not executable"
grep -q "edited by the operator" "$root/etc/abuseipdb-ioc/config.toml" \
  || fail "the second run overwrote config.toml"
python3 -m json.tool appliance/elastic-ingest-pipeline.json >/dev/null || fail "pipeline JSON"

if command -v systemd-analyze >/dev/null 2>&1; then
  # verify wants the ExecStart binary to exist: check a copy pointing at the staged one.
  unit="$root/verify/abuseipdb-ioc.service"
  mkdir -p "$root/verify"
  sed "s#/usr/local/bin/abuseipdb-ioc#$root/usr/local/bin/abuseipdb-ioc#" \
    appliance/abuseipdb-ioc.service >"$unit"
  if systemd-analyze verify "$unit" 2>"$root/verify.log"; then
    echo "systemd-analyze verify: ok"
  else
    cat "$root/verify.log" >&2
    fail "systemd-analyze verify rejected the unit"
  fi
else
  echo "note: systemd-analyze not available; unit not verified"
fi
echo "appliance install check: ok"
