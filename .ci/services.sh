#!/usr/bin/env bash
# Makes sure the real services the service tests use are running on their standard local ports
# (PostgreSQL 5432, RabbitMQ 5672, Mosquitto 1883), installing them from Debian's packages on a fresh
# machine. Idempotent: services already running are left alone.
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

# RabbitMQ on 5672 (guest/guest from loopback). The MQTT plugin must be available, but is NOT enabled
# on this node: its MQTT listener would take 1883 from Mosquitto. Tests that need the plugin start
# their own node with it (deploy/rabbitmq/).
if ! port_open 5672; then
  command -v rabbitmq-server >/dev/null || apt_install rabbitmq-server
  rabbitmq-server -detached || true
  wait_port 5672
fi
if ! ls /usr/lib/rabbitmq/lib/*/plugins 2>/dev/null | grep -q '^rabbitmq_mqtt-'; then
  echo "rabbitmq_mqtt plugin not found under /usr/lib/rabbitmq/lib/*/plugins" >&2
  exit 1
fi
echo "rabbitmq: up on 5672 (rabbitmq_mqtt available)"

# Mosquitto: the system broker on 1883, and /usr/sbin/mosquitto for the tests, which start their own
# brokers from deploy/mosquitto/ on free ports. openssl runs deploy/pki/make-certs.sh.
command -v /usr/sbin/mosquitto >/dev/null || apt_install mosquitto
command -v openssl >/dev/null || apt_install openssl
if ! port_open 1883; then
  mkdir -p /run/mosquitto /var/log/mosquitto /var/lib/mosquitto
  chown mosquitto /run/mosquitto /var/log/mosquitto /var/lib/mosquitto 2>/dev/null || true
  mosquitto -d -c /etc/mosquitto/mosquitto.conf
  wait_port 1883
fi
echo "mosquitto: up on 1883 ($(/usr/sbin/mosquitto -h | head -1))"
