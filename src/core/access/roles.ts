/**
 * Per-device roles, each including the rights of the ones before it. `admin` is not a device role
 * but a property of the caller (it beats every role on every device).
 */
export type Role = "viewer" | "operator" | "owner";

export const ROLES: readonly Role[] = ["viewer", "operator", "owner"];

const RANK: Record<Role, number> = { viewer: 1, operator: 2, owner: 3 };

/** Whether `role` includes `needed`. */
export function includes(role: Role | undefined, needed: Role): boolean {
  return role !== undefined && RANK[role] >= RANK[needed];
}

/** The stronger of two roles (undefined = none). */
export function stronger(a: Role | undefined, b: Role | undefined): Role | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return RANK[a] >= RANK[b] ? a : b;
}

/**
 * Everything a caller can do to or under a device, and the least role it needs. One table, so a
 * new RPC picks an action here rather than inventing its own rule.
 */
export const ACTIONS = {
  /** Get, list and watch the device; its tasks, telemetry, rules, rule runs and alarms. */
  "device.read": "viewer",
  /** Create and cancel tasks. */
  "task.write": "operator",
  /** Change the desired state (what the device should be). */
  "device.control": "operator",
  /** Acknowledge the device's alarms. */
  "alarm.acknowledge": "operator",
  /** Create, change, pause, resume or delete a rule targeting the device. */
  "rule.write": "operator",
  /** Change metadata: display name, labels, owner, firmware version, delivery policy. */
  "device.configure": "owner",
  "device.delete": "owner",
  /** Share and unshare the device. */
  "device.share": "owner",
} as const satisfies Record<string, Role>;

export type Action = keyof typeof ACTIONS;
