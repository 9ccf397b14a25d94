#!/usr/bin/env bash
# Makes sure the real services the service tests use are running on their standard local ports,
# installing them from Debian's packages on a fresh machine. Idempotent.
set -euo pipefail

port_open() { (echo > "/dev/tcp/127.0.0.1/$1") >/dev/null 2>&1; }
wait_port() { for _ in $(seq 1 60); do port_open "$1" && return 0; sleep 1; done; echo "port $1 did not open" >&2; return 1; }
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  [ -n "${APT_UPDATED:-}" ] || { apt-get update -qq; APT_UPDATED=1; }
  apt-get install -y -qq "$@" >/dev/null
}

# PostgreSQL on 5432, user postgres without a password from loopback (trust), as on the dev machines.
if ! port_open 5432; then
  command -v pg_ctlcluster >/dev/null || apt_install postgresql
  version="$(ls /etc/postgresql | sort -V | tail -1)"
  hba="/etc/postgresql/$version/main/pg_hba.conf"
  if ! grep -q "tether-ci" "$hba"; then
    sed -i '1i host all all 127.0.0.1/32 trust # tether-ci\nhost all all ::1/128 trust # tether-ci' "$hba"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_port 5432
fi
echo "postgresql: up on 5432"
