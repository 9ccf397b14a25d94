/**
 * One subscription's circuit breaker (per replica, in memory). After `failures` failed requests
 * in a row it opens: no request is made for `cooldownMs` (doubling while probes fail, up to
 * `maxCooldownMs`), then one probe is let through (half-open); a success closes it. A dead
 * endpoint then costs one request per cooldown instead of a full share of the relay's sockets.
 */
export function createCircuitBreaker(opts: { failures: number; cooldownMs: number; maxCooldownMs: number }) {
  let consecutive = 0;
  let openUntil = 0;
  let cooldown = opts.cooldownMs;
  let probing = false;
  return {
    /** How many requests may start now, given `wanted` (0 while open; 1 while probing). */
    allowance(nowMs: number, wanted: number): number {
      if (consecutive < opts.failures) return wanted;
      if (nowMs < openUntil || probing) return 0;
      probing = true;
      return Math.min(1, wanted);
    },
    /** Records one request's outcome. */
    record(ok: boolean, nowMs: number): void {
      if (ok) {
        consecutive = 0;
        cooldown = opts.cooldownMs;
        probing = false;
        return;
      }
      consecutive++;
      if (consecutive < opts.failures) return;
      if (probing) cooldown = Math.min(opts.maxCooldownMs, cooldown * 2);
      probing = false;
      openUntil = nowMs + cooldown;
    },
    /** Whether requests flow freely (not open, not probing): a batch in progress stops when it is not. */
    closed: () => consecutive < opts.failures,
    /** Whether it is open (for logs and tests). */
    isOpen: (nowMs: number) => consecutive >= opts.failures && nowMs < openUntil,
  };
}
