/**
 * Identities no device, provisioning template or device certificate may ever take.
 *
 * A device id is also its MQTT client id, its broker user name (Mosquitto's
 * `use_identity_as_username`, RabbitMQ's `ssl_cert_login`) and its certificate CN; a template id is
 * the CN of its claim certificates. A device named after one of Tether's own clients would take
 * over that client's MQTT session (a broker drops the older session of a client id) or its broker
 * user and ACL; one named `guest` would be RabbitMQ's default user. This is the one list: device
 * creation, provisioning templates and claims, CSR signing, the broker and the API all check it.
 */

/** Exact names with a meaning to Tether, the brokers or the deployment (`deploy/`). */
const RESERVED_NAMES: ReadonlySet<string> = new Set([
  // Tether's own identities: the bridge and provisioning service certificates (CN tether), the
  // bootstrap CLI certificate and user (CN admin), the certificate OUs.
  "tether",
  "admin",
  "administrator",
  "root",
  "devices",
  "services",
  "users",
  "claims",
  // Broker service users and the deployment's service certificates (deploy/pki/make-certs.sh).
  "mosquitto",
  "rabbitmq",
  "rabbit",
  "postgres",
  "haproxy",
  "localhost",
  // RabbitMQ's default user and the MQTT plugin's default/anonymous users.
  "guest",
  "anonymous",
  "default",
  // Broker-internal names: Mosquitto's `$SYS` tree and bridges, aedes' broker id.
  "sys",
  "bridge",
  "broker",
  "aedes",
  "system",
]);

/**
 * Reserved prefixes. `tether-` covers Tether's generated MQTT client ids
 * (`tether-{host}-{pid}`, `tether-provisioning-…`): a device with such an id could log them out.
 * `mosquitto-` and `rabbitmq-` are the brokers' own client and node names. (Mosquitto's bridge
 * client ids, `{host}.{bridge}`, contain a dot and so can never be device ids.)
 */
const RESERVED_PREFIXES: readonly string[] = ["tether-", "mosquitto-", "rabbitmq-"];

/**
 * Why `id` may not be used as a device id, template id or device certificate CN, or undefined if
 * it may. `$`-prefixed names (`$SYS`, `$share`) are already impossible: ids start with a letter.
 */
export function reservedIdProblem(id: string): string | undefined {
  const lower = id.toLowerCase();
  if (lower.startsWith("$")) return `"${id.slice(0, 64)}" is reserved: names starting with $ belong to the broker`;
  if (RESERVED_NAMES.has(lower)) return `"${lower}" is reserved for Tether or its brokers`;
  const prefix = RESERVED_PREFIXES.find((p) => lower.startsWith(p));
  if (prefix) return `"${lower.slice(0, 64)}" is reserved: ids starting with "${prefix}" belong to Tether or its brokers`;
  return undefined;
}

export function isReservedId(id: string): boolean {
  return reservedIdProblem(id) !== undefined;
}
