import { performance } from "node:perf_hooks";

/**
 * The main event loop's utilization (0–1) between one call and the next: the share of the time it
 * spent running callbacks rather than waiting for I/O. With `others` (the embedded database's
 * thread), the busiest of them: the webhook relay reads it each step and yields to the control
 * plane when the API's loop or the database it shares is saturated (core/webhooks/background-share.ts).
 */
export function loopUtilization(...others: (() => number)[]): () => number {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const u = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    return Math.max(u, ...others.map((f) => f()));
  };
}
