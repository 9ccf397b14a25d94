/**
 * Rejects when `p` has not settled within `ms` (a late rejection of `p` is handled by the race).
 * A query or probe against an unreachable server usually hangs (connect timeout, retransmits)
 * rather than fails, and a driver call can, rarely, never settle: health, scrapes and the
 * telemetry writer must not wait for it.
 */
export function withTimeout<T>(p: PromiseLike<T>, ms: number, what = "no answer"): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    Promise.resolve(p),
    new Promise<never>((_, reject) => (t = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms))),
  ]).finally(() => clearTimeout(t));
}
