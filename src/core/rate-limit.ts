/**
 * Per-key token buckets (one per device): `ratePerS` tokens a second, at most `burst` saved up.
 * Pure and clock-driven so it is tested without timers. Idle buckets are forgotten once full
 * again, so memory follows the devices that are talking, not every device ever seen.
 */
export interface RateLimiter {
  /** Takes one token for `key`; false when its bucket is empty (the message should be dropped). */
  take(key: string): boolean;
  /** Buckets held right now (for tests and bounds). */
  size(): number;
}

export interface RateLimitOptions {
  /** Sustained messages per second per key; 0 disables the limit. */
  ratePerS: number;
  /** Messages a key may send at once after being quiet. */
  burst: number;
  now: () => number;
}

export function createRateLimiter(o: RateLimitOptions): RateLimiter {
  const buckets = new Map<string, { tokens: number; at: number }>();
  let lastSweep = o.now();
  const refill = (b: { tokens: number; at: number }, now: number) => {
    b.tokens = Math.min(o.burst, b.tokens + ((now - b.at) / 1000) * o.ratePerS);
    b.at = now;
  };
  return {
    take(key) {
      if (o.ratePerS <= 0) return true;
      const now = o.now();
      // Every burst/rate seconds, drop the buckets that have refilled completely (idle devices).
      if (now - lastSweep > (o.burst / o.ratePerS) * 1000) {
        lastSweep = now;
        for (const [k, b] of buckets) {
          refill(b, now);
          if (b.tokens >= o.burst) buckets.delete(k);
        }
      }
      let b = buckets.get(key);
      if (!b) buckets.set(key, (b = { tokens: o.burst, at: now }));
      else refill(b, now);
      if (b.tokens < 1) return false;
      b.tokens -= 1;
      return true;
    },
    size: () => buckets.size,
  };
}

/**
 * Says once per `intervalMs` per key whether something should be logged now (a flooding device
 * must not flood the log too).
 */
export function createLogThrottle(intervalMs: number, now: () => number): (key: string) => boolean {
  const last = new Map<string, number>();
  return (key) => {
    const t = now();
    const prev = last.get(key);
    if (prev !== undefined && t - prev < intervalMs) return false;
    if (last.size > 10_000) for (const [k, v] of last) if (t - v >= intervalMs) last.delete(k);
    last.set(key, t);
    return true;
  };
}
