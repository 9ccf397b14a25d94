import type { Clock } from "../clock.js";
import type { CoreLogger } from "../log.js";
import type { ChangeFeed } from "../ports/index.js";
import { type Access, accessFromRights, type Caller, type Rights } from "./access.js";
import type { RightsChange, RightsRepository, UserRights } from "../ports/rights.js";
import { stronger } from "./roles.js";
import { parseSelector } from "./selector.js";

export interface RightsResolverDeps {
  repo: RightsRepository;
  /** Share/unshare and membership changes, from every replica. Each clears the cache. */
  feed: ChangeFeed<RightsChange>;
  clock: Clock;
  log: CoreLogger;
  /** How long resolved rights are reused across requests, ms. Changes through `feed` apply at once. @default 5000 */
  ttlMs?: number;
}

export interface RightsResolver {
  /**
   * The access of a user. `forceAdmin` makes them admin whatever the table says (the bootstrap
   * admin certificate). Cached for `ttlMs` or until a change is published.
   */
  forUser(user: string, opts?: { forceAdmin?: boolean }): Promise<Access & { exists: boolean }>;
  /** Tell every replica (and this one) that rights changed. */
  changed(change?: RightsChange): void;
}

/** Resolves and caches each user's effective rights; one place that turns grant rows into Access. */
export function createRightsResolver({ repo, feed, clock, log, ttlMs = 5000 }: RightsResolverDeps): RightsResolver {
  const cache = new Map<string, { at: number; rights: Promise<UserRights> }>();
  feed.subscribe((c) => {
    if (c.user === undefined) cache.clear();
    else cache.delete(c.user);
  });

  function load(user: string): Promise<UserRights> {
    const now = clock.now().getTime();
    const hit = cache.get(user);
    if (hit && now - hit.at < ttlMs) return hit.rights;
    const rights = repo.load(user);
    cache.set(user, { at: now, rights });
    rights.catch(() => cache.delete(user));
    return rights;
  }

  const resolver: RightsResolver = {
    async forUser(user, opts = {}) {
      const u = await load(user);
      const refresh = () => resolver.forUser(user, opts);
      return Object.assign(
        accessFromRights(
          rightsFromGrants(user, u, opts.forceAdmin ?? false, (selector) => log.warn({ user, selector }, "ignoring a share with an unparsable selector")),
          refresh,
        ),
        { exists: u.exists },
      );
    },
    changed(change = {}) {
      feed.publish(change);
    },
  };
  return resolver;
}

/**
 * Turns a user's loaded grant rows into Rights: the one place that does it, for API callers (the
 * resolver) and for the creators of rules and jobs (checked at each firing, see creator-rights.ts).
 */
export function rightsFromGrants(user: string, u: UserRights, forceAdmin: boolean, onBadSelector: (selector: string) => void = () => {}): Rights {
  const caller: Caller = { user, admin: forceAdmin || u.admin, groups: u.groups };
  const devices = new Map<string, NonNullable<ReturnType<typeof stronger>>>();
  const selectors: Rights["selectors"] = [];
  for (const g of u.grants) {
    if (g.targetKind === "device") devices.set(g.target, stronger(devices.get(g.target), g.role)!);
    else {
      try {
        selectors.push({ filter: parseSelector(g.target), role: g.role });
      } catch {
        // Validated when shared; a selector that no longer parses (a product kind removed) matches nothing.
        onBadSelector(g.target);
      }
    }
  }
  return { caller, devices, selectors };
}
