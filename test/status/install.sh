#!/usr/bin/env bash
# Debian packages the status page tests need (run as root after apt-get update):
#   chromium, chromium-driver  real headless browser driven by playwright-core
set -euo pipefail
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium chromium-driver fonts-dejavu-core
test -x /usr/bin/chromium
