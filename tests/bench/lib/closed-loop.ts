import { now, summarize, type LatencySummary } from "./stats.js";

export interface ClosedLoopResult {
  concurrency: number;
  seconds: number;
  /** Operations that finished inside the window. */
  completed: number;
  failed: number;
  perSecond: number;
  latency: LatencySummary;
  firstError?: string;
}

/**
 * `concurrency` loops each running `op` back to back for `seconds`. Only operations that finish
 * inside the window count; the ones still running at the end are awaited, not counted.
 */
export async function closedLoop(concurrency: number, seconds: number, op: (i: number) => Promise<void>): Promise<ClosedLoopResult> {
  const t0 = now();
  const end = t0 + seconds * 1000;
  const latencies: number[] = [];
  let failed = 0;
  let firstError: string | undefined;
  let n = 0;
  const loop = async () => {
    while (now() < end) {
      const start = now();
      try {
        await op(n++);
        const t = now();
        if (t <= end) latencies.push(t - start);
      } catch (err) {
        failed++;
        firstError ??= err instanceof Error ? err.message : String(err);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  return { concurrency, seconds, completed: latencies.length, failed, perSecond: latencies.length / seconds, latency: summarize(latencies), firstError };
}
