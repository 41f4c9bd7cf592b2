#!/usr/bin/env bash
# Debian packages the ICMP prober's tests need (run as root after apt-get update):
#   iputils-ping  the system ping the prober runs
#   nftables      drops echo requests inside a test network namespace
set -euo pipefail
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends iputils-ping nftables iproute2
command -v ping >/dev/null
