import type { SampleRecord } from "../core/telemetry/sample.js";
import type { QueuedBatch, TelemetryQueue } from "../core/ports/telemetry.js";

/**
 * The embedded telemetry queue: bounded, in memory, at-least-once within the process. Taken
 * batches are invisible until acked; a nack puts them back at the front, so order is kept and
 * nothing is lost while the database is down (up to `capacity` samples, then pushes are refused).
 *
 * Every push gets a sequence number; `committed()` waits until no push up to the current one has
 * samples left unacked. That is how the AMQP uplink consumer defers its broker ack until the
 * telemetry a message carried is stored.
 */
export function createMemoryQueue(capacity: number): TelemetryQueue {
  let queue: SampleRecord[] = [];
  let seqs: number[] = [];
  let inFlight = 0;
  let wake: (() => void) | undefined;
  let lastSeq = 0;
  /** push sequence → samples of it not yet acked; Map order is push order. */
  const unacked = new Map<number, number>();
  let waiters: Array<{ upTo: number; resolve: () => void }> = [];

  const oldestUnacked = (): number => {
    for (const seq of unacked.keys()) return seq;
    return Infinity;
  };
  function settle(batchSeqs: number[]) {
    for (const seq of batchSeqs) {
      const left = unacked.get(seq)! - 1;
      if (left === 0) unacked.delete(seq);
      else unacked.set(seq, left);
    }
    const oldest = oldestUnacked();
    const done = waiters.filter((w) => w.upTo < oldest);
    if (done.length === 0) return;
    waiters = waiters.filter((w) => w.upTo >= oldest);
    for (const w of done) w.resolve();
  }

  return {
    push(samples) {
      if (queue.length + inFlight + samples.length > capacity) return false;
      if (samples.length === 0) return true;
      const seq = ++lastSeq;
      unacked.set(seq, samples.length);
      for (const s of samples) {
        queue.push(s);
        seqs.push(seq);
      }
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
      const batchSeqs = seqs.slice(0, samples.length);
      queue = queue.slice(samples.length);
      seqs = seqs.slice(samples.length);
      inFlight += samples.length;
      let settled = false;
      const batch: QueuedBatch = {
        samples,
        ack() {
          if (settled) return;
          settled = true;
          inFlight -= samples.length;
          settle(batchSeqs);
        },
        nack() {
          if (settled) return;
          settled = true;
          inFlight -= samples.length;
          queue = samples.concat(queue);
          seqs = batchSeqs.concat(seqs);
        },
      };
      return batch;
    },
    depth: () => queue.length + inFlight,
    committed() {
      const upTo = lastSeq;
      if (oldestUnacked() > upTo) return Promise.resolve();
      return new Promise<void>((resolve) => waiters.push({ upTo, resolve }));
    },
  };
}
