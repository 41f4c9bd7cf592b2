#!/usr/bin/env bash
# Installs what the chart, image, alert and dashboard tests need on Debian 12, as root. Idempotent.
#
#   golang-go                          compiles test/helm/render, the chart render harness
#   golang-github-masterminds-sprig-dev  the template functions helm uses (GOPATH sources)
#   golang-gopkg-yaml.v2-dev, -v3-dev  YAML for toYaml/fromYaml and values files
#   prometheus                         promtool (check/test rules) and a Prometheus that parses
#                                      every dashboard query (test/alerts, test/helm)
#
# The prometheus package ships a service; it must not start: the tests run their own
# Prometheus on a free loopback port. A policy-rc.d answering 101 keeps dpkg from starting it.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: run as root" >&2
  exit 1
fi

if [ ! -x /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
fi

export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends \
  golang-go \
  golang-github-masterminds-sprig-dev \
  golang-gopkg-yaml.v2-dev \
  golang-gopkg-yaml.v3-dev \
  prometheus

# Fail here, not in the tests, if a piece is missing.
for tool in go gofmt promtool prometheus; do
  command -v "$tool" >/dev/null || { echo "install.sh: $tool is missing" >&2; exit 1; }
done
for src in github.com/Masterminds/sprig gopkg.in/yaml.v2 gopkg.in/yaml.v3; do
  [ -d "/usr/share/gocode/src/$src" ] || { echo "install.sh: Go sources $src are missing" >&2; exit 1; }
done
echo "install.sh: chart, alert and dashboard test tools ready"
