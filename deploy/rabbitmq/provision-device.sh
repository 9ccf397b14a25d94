#!/bin/sh
# Creates the RabbitMQ user of one device for MQTT with ssl_cert_login: the user name is the
# certificate CN (= device id); the password is random and never used (the certificate is the
# credential). The device may only:
#   - use its own MQTT session queues (mqtt-subscription-<id>qos0/qos1),
#   - publish under tether/v1/devices/<id>/{up,up/json,presence,metrics/...},
#   - subscribe to tether/v1/devices/<id>/down.
# Usage: provision-device.sh <device-id> [rabbitmqctl arguments, e.g. -n node@host]
# Remove a device with: rabbitmqctl delete_user <device-id>
#
# Device users carry the tag `tether-device`. Running the script again for a device resets its
# permissions; it refuses a name with a meaning to Tether or a broker (tether, admin, guest, ...)
# and any existing user without that tag, so it can never rewrite the rights of Tether's own or an
# operator's account.
set -eu
if [ $# -lt 1 ]; then echo "usage: provision-device.sh <device-id> [rabbitmqctl arguments]" >&2; exit 2; fi
id="$1"; shift
if ! printf '%s' "$id" | grep -Eq '^[a-z][a-z0-9-]{0,62}$'; then echo "invalid device id: $id" >&2; exit 2; fi
case "$id" in
  tether|admin|administrator|guest|mosquitto|rabbitmq|postgres|root|haproxy|operator|system|service|services|users|devices|anonymous)
    echo "refused: \"$id\" is a reserved name (Tether, broker and service accounts), never a device" >&2; exit 3 ;;
esac
CTL="${RABBITMQCTL:-rabbitmqctl}"
VHOST="${TETHER_MQTT_VHOST:-/}"
DEVICE_TAG=tether-device

# An existing user is re-provisioned only if it is a device (tagged by an earlier run).
users="$("$CTL" "$@" -q list_users --no-table-headers)" || { echo "cannot list RabbitMQ users (is the node running?)" >&2; exit 1; }
existing="$(printf '%s\n' "$users" | awk -v u="$id" '$1 == u { $1 = ""; print; found = 1 } END { if (!found) print "-" }')"
case "$existing" in
  -|*"$DEVICE_TAG"*) ;;
  *) echo "refused: RabbitMQ user \"$id\" already exists and is not a device user (tags:$existing)" >&2; exit 3 ;;
esac

# The user (no password at all: only its certificate logs it in), its tag, its permissions and
# topic permissions in one import, one rabbitmqctl run (each costs seconds). The vhost's name and
# the id are JSON-safe: the id matched the pattern above, and the vhost is checked here.
if ! printf '%s' "$VHOST" | grep -Eq '^[A-Za-z0-9/_.-]+$'; then echo "invalid vhost: $VHOST" >&2; exit 2; fi
own="mqtt-subscription-${id}qos[01]"
defs="$(mktemp)"
trap 'rm -f "$defs"' EXIT
cat > "$defs" <<JSON
{
  "users": [{ "name": "$id", "password_hash": "", "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ["$DEVICE_TAG"], "limits": {} }],
  "permissions": [{ "user": "$id", "vhost": "$VHOST", "configure": "^$own\$", "write": "^(amq\\\\.topic|$own)\$", "read": "^(amq\\\\.topic|$own)\$" }],
  "topic_permissions": [{ "user": "$id", "vhost": "$VHOST", "exchange": "amq.topic",
    "write": "^tether\\\\.v1\\\\.devices\\\\.{username}\\\\.(up|up\\\\.json|presence|metrics\\\\..+)\$",
    "read": "^tether\\\\.v1\\\\.devices\\\\.{username}\\\\.down\$" }]
}
JSON
"$CTL" "$@" -q import_definitions "$defs" >/dev/null
