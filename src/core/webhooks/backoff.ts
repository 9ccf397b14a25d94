/** Retry timing of one subscription's deliveries (TETHER_WEBHOOK_* in the README). */
export interface RetryPolicy {
  /** Delay before the 2nd try, ms; doubles per try. */
  baseMs: number;
  /** Upper bound of one delay, ms. */
  maxMs: number;
  /** Tries before a delivery is DEAD. */
  maxAttempts: number;
  /** A delivery older than this is DEAD at its next failure (or when the sweep sees it), ms. */
  maxAgeMs: number;
}

/**
 * Exponential back-off with "equal jitter": half the delay is fixed, half random, so a receiver
 * that comes back is not hit by every subscription's retries in the same instant, and no retry
 * comes sooner than half the nominal delay. `attempt` is the try that just failed (1-based).
 */
export function retryDelayMs(p: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const nominal = Math.min(p.maxMs, p.baseMs * 2 ** Math.min(30, Math.max(0, attempt - 1)));
  return Math.round(nominal / 2 + random() * (nominal / 2));
}

/** Whether a delivery that just failed its `attempt`-th try is given up. */
export function isExhausted(p: RetryPolicy, attempt: number, createTime: Date, now: Date): boolean {
  return attempt >= p.maxAttempts || now.getTime() - createTime.getTime() >= p.maxAgeMs;
}
