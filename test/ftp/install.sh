#!/usr/bin/env bash
# Installs every FTP server the FTP prober's tests start, on Debian 12, as root. Idempotent.
#
#   vsftpd, pyftpdlib      Debian packages, installed normally.
#   proftpd (+ mod_tls),   Their packages conflict with vsftpd (all "Provide: ftp-server"), so
#   pure-ftpd              they are unpacked, not installed, under $PEERS_DIR/<name>; their
#                          runtime libraries are installed as ordinary packages.
#   ftp-srv                npm devDependency, nothing to do here.
#   curl                   the independent client that vouches for the scripted hostile peer.
#
# It also creates the local account vsftpd logs in with (a real system user with no shell)
# and a PAM service for it; the account's random password is written to
# $PEERS_DIR/ftp-user.password (mode 0600), where the tests read it.
set -euo pipefail

PEERS_DIR=/opt/portprobe-peers
FTP_USER=portprobe-ftp

if [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: run as root" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends \
  vsftpd python3-pyftpdlib python3-openssl openssl curl \
  libhiredis0.14 libmemcached11 libmemcachedutil2 libpcre2-posix3 libsodium23 libcap2 libacl1 libpam0g

mkdir -p "$PEERS_DIR"

# unpack NAME PACKAGE...: download the packages' current versions and unpack them into
# $PEERS_DIR/NAME, unless that exact set is already there.
unpack() {
  local name=$1
  shift
  local want have=""
  want=$(apt-cache policy "$@" | awk '/Candidate:/ {print $2}' | tr '\n' ' ')
  [ -f "$PEERS_DIR/$name/.versions" ] && have=$(cat "$PEERS_DIR/$name/.versions")
  if [ "$want" = "$have" ]; then
    echo "install.sh: $name already unpacked ($want)"
    return
  fi
  local tmp
  tmp=$(mktemp -d)
  chown _apt "$tmp" 2>/dev/null || chmod 777 "$tmp" # apt-get download runs as _apt
  (cd "$tmp" && apt-get download "$@")
  rm -rf "$PEERS_DIR/$name.new"
  mkdir -p "$PEERS_DIR/$name.new"
  for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$PEERS_DIR/$name.new"; done
  echo "$want" >"$PEERS_DIR/$name.new/.versions"
  rm -rf "$PEERS_DIR/$name" "$tmp"
  mv "$PEERS_DIR/$name.new" "$PEERS_DIR/$name"
  echo "install.sh: unpacked $name ($want)"
}

unpack proftpd proftpd-core proftpd-mod-crypto
unpack pure-ftpd pure-ftpd

# Every binary must find its libraries; a missing one is an install failure, not a test skip.
for bin in "$PEERS_DIR/proftpd/usr/sbin/proftpd" "$PEERS_DIR/proftpd/usr/lib/proftpd/mod_tls.so" \
  "$PEERS_DIR/pure-ftpd/usr/sbin/pure-ftpd" /usr/sbin/vsftpd; do
  if ldd "$bin" | grep -q 'not found'; then
    echo "install.sh: $bin has unresolved libraries:" >&2
    ldd "$bin" | grep 'not found' >&2
    exit 1
  fi
done

# Anonymous FTP needs the "ftp" account (the vsftpd package normally creates it).
if ! getent passwd ftp >/dev/null; then
  useradd --system --home-dir /srv/ftp --shell /usr/sbin/nologin ftp
fi
mkdir -p /srv/ftp

# The local user for vsftpd's (and the other servers' virtual users') logins.
if ! getent passwd "$FTP_USER" >/dev/null; then
  useradd --system --create-home --home-dir "/home/$FTP_USER" --shell /usr/sbin/nologin "$FTP_USER"
fi
if [ ! -s "$PEERS_DIR/ftp-user.password" ]; then
  (umask 077 && openssl rand -hex 16 >"$PEERS_DIR/ftp-user.password")
fi
echo "$FTP_USER:$(cat "$PEERS_DIR/ftp-user.password")" | chpasswd

# vsftpd's Debian PAM service insists on a login shell (pam_shells); the test account has
# none, so the tests use this service instead.
cat >/etc/pam.d/portprobe-ftp <<'PAM'
# PAM service for portprobe's FTP tests (vsftpd local-user logins). Written by test/ftp/install.sh.
auth    required  pam_unix.so
account required  pam_unix.so
session required  pam_permit.so
PAM

# A service whose authentication hangs, as when PAM waits on an LDAP or RADIUS server that is
# down: vsftpd greets, then never answers PASS (test/ftp/stalled.test.ts).
cat >/etc/pam.d/portprobe-ftp-hung <<'PAM'
# PAM service for portprobe's FTP tests: authentication that never finishes. Written by test/ftp/install.sh.
auth    required  pam_exec.so quiet /bin/sleep 120
account required  pam_permit.so
session required  pam_permit.so
PAM

# vsftpd's chroot_local_user/secure_chroot_dir default.
mkdir -p /var/run/vsftpd/empty

echo "install.sh: FTP peers ready in $PEERS_DIR"
