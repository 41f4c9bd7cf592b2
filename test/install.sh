#!/usr/bin/env bash
# Installs the Debian packages and unpacked servers the test suite uses as real peers, then
# remembers (by a hash of the install scripts) that it did, so later `npm test` runs skip it.
# Run as root on Debian 12. Without root it only says what it could not do.
set -euo pipefail
cd "$(dirname "$0")/.."

stamp=/var/lib/portprobe-test-peers.stamp
want=$(cat test/install.sh test/*/install.sh 2>/dev/null | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "test/install.sh: not root, so the test peers (Debian packages) cannot be installed;" >&2
  echo "tests that need them will fail. Run 'sudo bash test/install.sh' once." >&2
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
# Packages such as prometheus must not start system services: the tests start their own.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
fi
apt-get update -q
apt-get install -y -q --no-install-recommends \
  prometheus iproute2 nftables openssl procps ca-certificates
# The image build (test/e2e/image-build.test.ts): buildah builds and mounts the image, debootstrap
# makes the stand-ins for its base images, getcap (libcap2-bin) reads ping's file capability.
apt-get install -y -q --no-install-recommends buildah debootstrap libcap2-bin
for script in test/*/install.sh; do
  echo "test/install.sh: running $script"
  bash "$script"
done
mkdir -p "$(dirname "$stamp")"
echo "$want" > "$stamp"
