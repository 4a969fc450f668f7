#!/usr/bin/env bash
# The status page in a real headless Chromium: installs Debian's chromium and chromium-driver
# when missing, then runs the Rust browser test (tests/status_browser.rs), which serves a
# known snapshot and drives the page through chromedriver. Screenshots land in
# target/test-output/. Then the install script's check (tests/appliance/install.sh).
# Usage: tests/browser/run.sh [path-to-binary]   (the binary is not needed by the browser test)
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! [ -x /usr/bin/chromium ] || ! command -v chromedriver >/dev/null 2>&1; then
  echo "installing chromium and chromium-driver for the browser test"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi

CI="${CI:-true}" cargo test --locked --test status_browser

bash tests/appliance/install.sh
