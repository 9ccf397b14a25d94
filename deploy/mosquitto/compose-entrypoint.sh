#!/bin/sh
# Mosquitto's entrypoint in docker-compose.yml. Mosquitto insists on owning its key, so the key is
# copied from the read-only mount with the right owner and mode. crl.pem links to the CRL that the
# crl-sync service keeps current; Mosquitto reads a CRL only at start and on SIGHUP, so this
# script sends SIGHUP whenever the file changes (as tether-crl.path does on a systemd host).
set -eu
mkdir -p /etc/mosquitto/certs /var/lib/mosquitto
cp /pki/ca.crt /etc/mosquitto/certs/ca.crt
cp /pki/mosquitto.crt /etc/mosquitto/certs/server.crt
cp /pki/mosquitto.key /etc/mosquitto/certs/server.key
chown mosquitto /etc/mosquitto/certs/server.key /var/lib/mosquitto
chmod 0600 /etc/mosquitto/certs/server.key
ln -sf /crl/crl.pem /etc/mosquitto/certs/crl.pem
while [ ! -s /crl/crl.pem ]; do sleep 1; done

mosquitto -c /etc/mosquitto/mosquitto.conf &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null' TERM INT
last="$(stat -c %Y-%i /crl/crl.pem)"
while kill -0 "$pid" 2>/dev/null; do
  sleep "${CRL_CHECK_INTERVAL_S:-5}" & wait $! || true
  now="$(stat -c %Y-%i /crl/crl.pem 2>/dev/null || echo "$last")"
  if [ "$now" != "$last" ]; then
    last="$now"
    echo "crl.pem changed: SIGHUP to mosquitto"
    kill -HUP "$pid"
  fi
done
wait "$pid"
