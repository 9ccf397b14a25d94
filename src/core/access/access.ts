import { NotFoundError, PermissionDeniedError } from "../errors.js";
import type { DeviceFilter } from "../devices/device-filter.js";
import { ACTIONS, type Action, includes, type Role, stronger } from "./roles.js";
import { type DeviceMeta, matchesFilter } from "./selector.js";

/** Who is asking, as far as rights go. */
export interface Caller {
  /** The user name; `tether` for Tether's own services. */
  user: string;
  /** Admins (and Tether's services) may do everything. */
  admin: boolean;
  /** Group names the user belongs to. */
  groups: string[];
  /** Set for Tether's own services (a service certificate's CN): what they create is theirs, not a user's. */
  service?: string;
  /**
   * The credential of this call as a resource name (`users/alice`, `users/alice/apiKeys/k1`,
   * `services/tether`), set per call by the API: what `Task.creator` records. Unset outside a call.
   */
  principal?: string;
}

/** A caller's effective shares, already merged over the user and their groups. */
export interface Rights {
  caller: Caller;
  /** Device id → the strongest role shared on it. */
  devices: Map<string, Role>;
  /** Selector shares. Few per user: each is checked in memory and becomes one SQL disjunct. */
  selectors: Array<{ filter: DeviceFilter; role: Role }>;
}

/**
 * The devices a caller may see, for filtering lists in SQL (so pagination stays correct):
 * everything, or devices they own OR shared by id OR matching a shared selector.
 */
export type DeviceScope = { all: true } | { all: false; owner: string; deviceIds: string[]; selectors: DeviceFilter[] };

/**
 * What one caller may do. Core services receive one with every call and ask it before acting;
 * streams ask `current()` for each item so a share or unshare applies to open watches.
 */
export interface Access {
  readonly caller: Caller;
  /** True for admins and services: no per-device checks needed. */
  readonly all: boolean;
  /** The caller's role on a device, or undefined if they may not even see it. */
  roleOn(device: DeviceMeta): Role | undefined;
  /** The devices the caller may see, for SQL. */
  scope(): DeviceScope;
  /** The caller's rights as of now (re-resolved after shares change); `this` for fixed rights. */
  current(): Promise<Access>;
}

/** Access from resolved rights; `refresh` re-resolves them (for long-lived streams). */
export function accessFromRights(rights: Rights, refresh?: () => Promise<Access>): Access {
  const { caller } = rights;
  const self: Access = {
    caller,
    all: caller.admin,
    roleOn(d) {
      if (caller.admin) return "owner";
      let role: Role | undefined = d.owner !== "" && d.owner === caller.user ? "owner" : undefined;
      role = stronger(role, rights.devices.get(d.id));
      for (const s of rights.selectors) if (matchesFilter(s.filter, d)) role = stronger(role, s.role);
      return role;
    },
    scope() {
      if (caller.admin) return { all: true };
      return { all: false, owner: caller.user, deviceIds: [...rights.devices.keys()], selectors: rights.selectors.map((s) => s.filter) };
    },
    current: refresh ?? (async () => self),
  };
  return self;
}

/**
 * A Tether service (a certificate with OU=services, named `name`): every right on everything.
 * `caller.user` stays `tether` for everything that records a user; `creatorOf` names the service.
 */
export function serviceAccess(name: string): Access {
  return accessFromRights({ caller: { user: "tether", admin: true, groups: [], service: name }, devices: new Map(), selectors: [] });
}

/** Tether's own services (rule firings, job executions, tests and benchmarks): every right on everything. */
export const FULL_ACCESS: Access = serviceAccess("tether");

/**
 * The creator recorded on what a caller creates (rules, jobs): `services/{service}` for a Tether
 * service, otherwise `users/{user}`. What it creates later runs with that principal's rights.
 */
export function creatorOf(access: Access): string {
  return access.caller.service !== undefined ? `services/${access.caller.service}` : `users/${access.caller.user}`;
}

/**
 * The caller's rights with this call's principal named on them (`actorOf`). The rights
 * themselves are shared and cached per user; this wrapper is per call.
 */
export function withPrincipal(access: Access, principal: string): Access {
  return {
    ...access,
    caller: { ...access.caller, principal },
    roleOn: (d) => access.roleOn(d),
    scope: () => access.scope(),
    current: async () => withPrincipal(await access.current(), principal),
  };
}

/**
 * Who a caller's call acts as, for `Task.creator`: the call's principal (an API key is named as
 * such), else the creator form of `creatorOf`.
 */
export function actorOf(access: Access): string {
  return access.caller.principal ?? creatorOf(access);
}

/**
 * Refuses `action` on `device` unless the caller's role includes it. A caller who cannot even
 * see the device gets NOT_FOUND (named as `resource`), so a stranger cannot probe which devices
 * exist; one who sees it but lacks the role gets PERMISSION_DENIED.
 */
export function authorize(access: Access, action: Action, device: DeviceMeta, resource = `devices/${device.id}`): void {
  if (access.all) return;
  const role = access.roleOn(device);
  if (role === undefined) throw new NotFoundError(resource);
  const needed = ACTIONS[action];
  if (!includes(role, needed)) {
    throw new PermissionDeniedError(`${action} on devices/${device.id} needs the ${needed} role; ${access.caller.user} is ${role}`);
  }
}

/** Refuses anything but admins (user and group management, selector shares). */
export function requireAdmin(access: Access, what: string): void {
  if (!access.caller.admin) throw new PermissionDeniedError(`${what} needs an admin; ${access.caller.user} is not one`);
}
