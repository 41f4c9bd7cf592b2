#!/usr/bin/env bash
# Debian 12 packages the sockets tests need, as root after apt-get update. Idempotent.
#   iproute2   `ss`: the independent listener list the live tests compare the scan with
#   net-tools  `netstat`: what systeminformation's networkConnections() runs on Linux (without
#              it, systeminformation falls back to ss)
# promtool (package prometheus) comes from test/install.sh.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "test/sockets/install.sh: run as root" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends iproute2 net-tools
for tool in ss netstat; do
  command -v "$tool" >/dev/null || { echo "test/sockets/install.sh: $tool is missing" >&2; exit 1; }
done
