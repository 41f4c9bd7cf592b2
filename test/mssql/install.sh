#!/usr/bin/env bash
# Debian packages the SQL Server tests need (run as root after apt-get update):
#   freetds-bin  tsql, an independent TDS client that must accept the test peer
#   nmap         ms-sql-info, which must read the version the test peer advertises
#   openssl      makes the test peer's self-signed certificate
set -euo pipefail
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends freetds-bin nmap openssl
