#!/usr/bin/env bash
# Debian packages the sockets tests need (run as root after apt-get update).
#   iproute2: `ss`, the independent listener list the live tests compare against.
#   net-tools: `netstat`, which systeminformation's networkConnections() runs on Linux
#              (without it, systeminformation falls back to ss).
set -euo pipefail
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends iproute2 net-tools util-linux
