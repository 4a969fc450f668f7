#!/usr/bin/env bash
# Installs abuseipdb-ioc as a systemd service. Idempotent: run it again to upgrade the binary
# and the unit; an existing config.toml or env file is never overwritten.
#
#   sudo appliance/install.sh [path/to/abuseipdb-ioc]     (default: target/release/abuseipdb-ioc)
#   DESTDIR=/tmp/root appliance/install.sh BIN            (stage into a scratch root; no
#                                                          user is created, systemd is left alone)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
bin="${1:-$repo/target/release/abuseipdb-ioc}"
dest="${DESTDIR:-}"
user=abuseipdb-ioc

bindir="$dest/usr/local/bin"
confdir="$dest/etc/abuseipdb-ioc"
statedir="$dest/var/lib/abuseipdb-ioc"
unitdir="$dest/etc/systemd/system"
sharedir="$dest/usr/share/abuseipdb-ioc"
docdir="$dest/usr/share/doc/abuseipdb-ioc"

say() { echo "install.sh: $*"; }

require_binary() {
  if [ ! -x "$bin" ]; then
    echo "install.sh: no executable at $bin; build it with 'cargo build --release --locked'" >&2
    exit 1
  fi
}

# The system user, only on a real install (DESTDIR empty) and only once.
create_user() {
  [ -z "$dest" ] || return 0
  if ! getent passwd "$user" >/dev/null; then
    say "creating system user $user"
    useradd --system --user-group --home-dir /var/lib/abuseipdb-ioc --no-create-home \
      --shell /usr/sbin/nologin "$user"
  fi
}

owner_args() {
  if [ -z "$dest" ]; then echo "-o root -g $user"; fi
}

install_files() {
  install -d -m 0755 "$bindir" "$unitdir" "$sharedir" "$docdir"
  install -d -m 0750 $(owner_args) "$confdir"
  install -d -m 0750 "$statedir"
  [ -n "$dest" ] || chown "$user:$user" "$statedir"
  install -m 0755 "$bin" "$bindir/abuseipdb-ioc"
  install -m 0644 "$here/abuseipdb-ioc.service" "$unitdir/abuseipdb-ioc.service"
  for f in abuseipdb-ioc-firewall.service abuseipdb-ioc-firewall.timer \
    elastic-ingest-pipeline.json config.toml.example; do
    install -m 0644 "$here/$f" "$sharedir/$f"
  done
  if [ -f "$repo/docs/appliance.md" ]; then
    install -m 0644 "$repo/docs/appliance.md" "$docdir/appliance.md"
  fi
}

# Configuration is the operator's: written once, never replaced.
install_config() {
  if [ -e "$confdir/config.toml" ]; then
    say "keeping the existing $confdir/config.toml"
  else
    install -m 0640 $(owner_args) "$here/config.toml.example" "$confdir/config.toml"
    say "wrote $confdir/config.toml; edit it, then restart the service"
  fi
  if [ ! -e "$confdir/env" ]; then
    printf '# Secrets as KEY=value lines, e.g.\n# ABUSEIPDB_API_KEY=...\n# API_KEYS=...\n' \
      >"$confdir/env"
    chmod 0640 "$confdir/env"
    [ -n "$dest" ] || chown "root:$user" "$confdir/env"
  fi
}

systemd_running() {
  [ -z "$dest" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null
}

enable_service() {
  if systemd_running; then
    systemctl daemon-reload
    systemctl enable abuseipdb-ioc.service
    say "enabled; start it with: systemctl start abuseipdb-ioc"
  else
    say "systemd not running here (or DESTDIR set): unit installed, not enabled"
  fi
}

require_binary
create_user
install_files
install_config
enable_service
say "done"
