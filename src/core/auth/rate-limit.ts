import type { Clock } from "../clock.js";

export interface LoginLimits {
  /** Failed logins allowed per user name per window. @default 5 */
  perName: number;
  /** Failed logins allowed per client address per window. @default 20 */
  perAddress: number;
  /** The window, ms. @default 15 minutes */
  windowMs: number;
}

/**
 * Counts failed logins per user name and per client address in a fixed window; past the limit,
 * logins are refused without checking the password (so guessing costs the attacker the window,
 * and the server no scrypt work). A success clears the name's count. Per process: with several
 * replicas an attacker gets `replicas ×` the attempts, still bounded.
 */
export function createLoginLimiter(limits: LoginLimits, clock: Clock) {
  const counts = new Map<string, { start: number; n: number }>();
  const get = (key: string) => {
    const now = clock.now().getTime();
    const c = counts.get(key);
    if (!c || now - c.start >= limits.windowMs) return { start: now, n: 0 };
    return c;
  };
  return {
    /** Which limit is exhausted, if any; the retry time in ms. */
    blocked(name: string, address: string): { by: "name" | "address"; retryMs: number } | undefined {
      const now = clock.now().getTime();
      const byName = get(`n:${name}`);
      if (byName.n >= limits.perName) return { by: "name", retryMs: byName.start + limits.windowMs - now };
      const byAddr = get(`a:${address}`);
      if (byAddr.n >= limits.perAddress) return { by: "address", retryMs: byAddr.start + limits.windowMs - now };
      return undefined;
    },
    failed(name: string, address: string): void {
      for (const key of [`n:${name}`, `a:${address}`]) {
        const c = get(key);
        counts.set(key, { start: c.start, n: c.n + 1 });
      }
      if (counts.size > 100_000) {
        const now = clock.now().getTime();
        for (const [k, c] of counts) if (now - c.start >= limits.windowMs) counts.delete(k);
      }
    },
    succeeded(name: string): void {
      counts.delete(`n:${name}`);
    },
  };
}
