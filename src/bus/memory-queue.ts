import type { SampleRecord } from "../core/telemetry/sample.js";
import type { QueuedBatch, TelemetryQueue } from "../core/telemetry/telemetry-ports.js";

/**
 * The embedded telemetry queue: bounded, in memory, at-least-once within the process. Taken
 * batches are invisible until acked; a nack puts them back at the front, so order is kept and
 * nothing is lost while the database is down (up to `capacity` samples, then pushes are refused).
 */
export function createMemoryQueue(capacity: number): TelemetryQueue {
  let queue: SampleRecord[] = [];
  let inFlight = 0;
  let wake: (() => void) | undefined;
  return {
    push(samples) {
      if (queue.length + inFlight + samples.length > capacity) return false;
      for (const s of samples) queue.push(s);
      wake?.();
      return true;
    },
    async take(max, waitMs) {
      if (queue.length === 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, waitMs);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
      }
      if (queue.length === 0) return undefined;
      const samples = queue.slice(0, max);
      queue = queue.slice(samples.length);
      inFlight += samples.length;
      let settled = false;
      const batch: QueuedBatch = {
        samples,
        ack() {
          if (settled) return;
          settled = true;
          inFlight -= samples.length;
        },
        nack() {
          if (settled) return;
          settled = true;
          inFlight -= samples.length;
          queue = samples.concat(queue);
        },
      };
      return batch;
    },
    depth: () => queue.length + inFlight,
  };
}
