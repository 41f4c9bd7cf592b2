#!/bin/sh
# Debian packages the benchmarks under bench/ use (run as root).
#   prometheus-blackbox-exporter  the comparison in throughput.bench.ts (scenario 1)
#   util-linux                    taskset, to pin both programs to one core
#   hyperfine                     optional cross-check of startup.bench.ts
#   python3, iproute2, nftables   latency.bench.ts: the delayed peer, its namespace and SYN drop
set -eu
apt-get install -y --no-install-recommends prometheus-blackbox-exporter util-linux hyperfine python3 iproute2 nftables
command -v prometheus-blackbox-exporter >/dev/null
command -v taskset >/dev/null
command -v python3 >/dev/null
command -v nft >/dev/null
