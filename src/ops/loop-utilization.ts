import { performance } from "node:perf_hooks";

/**
 * The main event loop's utilization (0–1) between one call and the next: the share of the time it
 * spent running callbacks rather than waiting for I/O. The webhook relay reads it each step to yield
 * to the control plane when the loop is saturated (core/webhooks/background-share.ts).
 */
export function loopUtilization(): () => number {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const u = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    return u;
  };
}
