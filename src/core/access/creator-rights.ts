import { type Access, accessFromRights } from "./access.js";
import type { UserRights } from "../ports/rights.js";
import { rightsFromGrants } from "./rights-resolver.js";
import { includes } from "./roles.js";
import type { DeviceMeta } from "./selector.js";

// A rule or a job acts later, unattended, on behalf of whoever created it. It must never do
// more than that creator could do right now: when a share is removed, the user deleted or an
// admin demoted, their rules and jobs stop commanding the devices concerned. The check runs in
// the transaction that creates the tasks (see src/store/creator-rights-query.ts), so there is no
// window between deciding and commanding.

/** A rule's or job's creator: `users/{user}` or `services/{service}` (see `creatorOf`). */
export type Creator = { kind: "user"; user: string } | { kind: "service"; name: string };

/** The role a creator needs on a device for their rule or job to send it a command. */
export const CREATOR_ROLE = "operator";

export function parseCreator(text: string): Creator | undefined {
  const m = /^(users|services)\/([^/]+)$/.exec(text);
  if (!m) return undefined;
  return m[1] === "users" ? { kind: "user", user: m[2]! } : { kind: "service", name: m[2]! };
}

/** The user names among `creators`: the only ones whose rights a batch has to load. */
export function creatorUsers(creators: Iterable<string>): string[] {
  const users = new Set<string>();
  for (const c of creators) {
    const p = parseCreator(c);
    if (p?.kind === "user") users.add(p.user);
  }
  return [...users].sort();
}

/**
 * Loads the rights of several users in one query, on the caller's transaction; device shares
 * may be limited to `deviceIds` (the batch's targets), selector shares are always loaded. A
 * user without a row comes back with `exists: false` (or is absent).
 */
export type CreatorRightsLoader = (users: string[], deviceIds: string[]) => Promise<Map<string, UserRights>>;

/**
 * For one batch: a function telling whether `creator` may still command `device`. It returns
 * undefined when they may, else the reason to record on the run target or job execution,
 * `skipped: creator users/alice lost operator on devices/x (…)`. Services (Tether's own
 * certificates) keep every right: revoking their certificate is how they lose it. Rights are the
 * same as for an API call (owner, shares by id, group and selector, admin), minus what only a
 * live certificate proves: the bootstrap admin certificate's forced admin, and a certificate CN
 * without a user row. A stored rule runs with stored rights, so a creator without a user row
 * (deleted, or a certificate-only identity) commands nothing: failing closed is the point, since
 * a deleted user's devices still name them as owner.
 */
export function creatorCheck(loaded: ReadonlyMap<string, UserRights>): (creator: string, device: DeviceMeta) => string | undefined {
  const accesses = new Map<string, Access | null>();
  const accessOf = (user: string): Access | null => {
    let a = accesses.get(user);
    if (a === undefined) {
      const u = loaded.get(user);
      a = u?.exists ? accessFromRights(rightsFromGrants(user, u, false)) : null;
      accesses.set(user, a);
    }
    return a;
  };
  return (creator, device) => {
    const c = parseCreator(creator);
    const lost = (why: string) => `skipped: creator ${creator || '""'} lost ${CREATOR_ROLE} on devices/${device.id} (${why})`;
    if (!c) return lost("not a user or service name");
    if (c.kind === "service") return undefined;
    const access = accessOf(c.user);
    if (!access) return lost("no such user: deleted, or never registered");
    const role = access.roleOn(device);
    if (includes(role, CREATOR_ROLE)) return undefined;
    return lost(role === undefined ? `${c.user} has no role on it` : `${c.user} is only ${role} on it`);
  };
}

/**
 * For one batch of job rules' firings: undefined if `creator` may still start a job (an admin,
 * or a service), else the reason recorded on the run. Starting jobs is admin business, as
 * CreateJob is; the job's rollout then checks each target again.
 */
export function creatorAdminCheck(loaded: ReadonlyMap<string, UserRights>): (creator: string) => string | undefined {
  return (creator) => {
    const c = parseCreator(creator);
    if (c?.kind === "service") return undefined;
    const u = c ? loaded.get(c.user) : undefined;
    if (u?.exists && u.admin) return undefined;
    return `skipped: creator ${creator || '""'} ${u?.exists ? "is no longer an admin" : "is not an existing user"}; a rule that starts jobs needs one`;
  };
}
