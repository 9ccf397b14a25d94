#!/bin/sh
# Creates the RabbitMQ user of one device for MQTT with ssl_cert_login: the user name is the
# certificate CN (= device id); the password is random and never used (the certificate is the
# credential). The device may only:
#   - use its own MQTT session queues (mqtt-subscription-<id>qos0/qos1),
#   - publish under tether/v1/devices/<id>/{up,up/json,presence,metrics/...},
#   - subscribe to tether/v1/devices/<id>/down.
# Usage: provision-device.sh <device-id> [rabbitmqctl arguments, e.g. -n node@host]
# Remove a device with: rabbitmqctl delete_user <device-id>
set -eu
id="$1"; shift
case "$id" in
  [a-z]*) ;;
  *) echo "invalid device id: $id" >&2; exit 2 ;;
esac
if ! printf '%s' "$id" | grep -Eq '^[a-z][a-z0-9-]{0,62}$'; then echo "invalid device id: $id" >&2; exit 2; fi
CTL="${RABBITMQCTL:-rabbitmqctl}"
VHOST="${TETHER_MQTT_VHOST:-/}"
q="^mqtt-subscription-${id}qos[01]\$"
"$CTL" "$@" add_user "$id" "$(head -c 24 /dev/urandom | base64 | tr -d '/+=')" >/dev/null 2>&1 || true
"$CTL" "$@" set_permissions -p "$VHOST" "$id" "$q" "^(amq\\.topic|mqtt-subscription-${id}qos[01])\$" "^(amq\\.topic|mqtt-subscription-${id}qos[01])\$"
"$CTL" "$@" set_topic_permissions -p "$VHOST" "$id" amq.topic \
  "^tether\\.v1\\.devices\\.{username}\\.(up|up\\.json|presence|metrics\\..+)\$" \
  "^tether\\.v1\\.devices\\.{username}\\.down\$"
