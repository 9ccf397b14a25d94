import type { Counters } from "../ports/index.js";
import { withTimeout } from "../timeout.js";
import type { CoreLogger } from "../log.js";
import type { QueuedBatch, TelemetryQueue, TelemetryRepository } from "../ports/telemetry.js";

export interface BatchWriterOptions {
  queue: TelemetryQueue;
  store: TelemetryRepository;
  counters: Counters;
  log: CoreLogger;
  /** Most samples per INSERT. @default 5000 */
  maxBatch?: number;
  /** How long to wait for more samples before writing a partial batch, ms. @default 20 */
  flushMs?: number;
  /** Batches written at once. Order does not matter (inserts are idempotent); use 1 on PGlite. @default 1 */
  writers?: number;
  /**
   * An insert that has not settled after this long is given up and its batch requeued, ms. A
   * driver call that never settles (seen rarely with postgres.js after outages) must not stall
   * the writer, nor every receipt waiting for that batch. @default 60000
   */
  insertTimeoutMs?: number;
  /**
   * A batch smaller than `minBatch` waits this long once for more samples before it is written,
   * ms. Single-sample messages from many devices then share one statement: each statement has a
   * fixed cost (on the embedded PGlite, measured at about 3 ms for the insert with its rollups,
   * paid on the main thread), which 50-sample batches pay a hundred times a second. It delays
   * receipts by at most this much. 0 = write what is there at once. @default 0
   */
  lingerMs?: number;
  /** See `lingerMs`. @default 1000 */
  minBatch?: number;
}

/** Two taken batches as one: acked together; nacked in order (the later one goes back first). */
function merge(a: QueuedBatch, b: QueuedBatch): QueuedBatch {
  return {
    samples: a.samples.concat(b.samples),
    ack() {
      a.ack();
      b.ack();
    },
    nack() {
      b.nack();
      a.nack();
    },
  };
}

/**
 * Moves samples from the queue into the database in large set-based INSERTs, and acknowledges a
 * batch only after its transaction committed. While the database fails, batches go back to the
 * queue and the writer backs off (up to 5 s): samples wait, nothing is dropped.
 */
export function createBatchWriter(o: BatchWriterOptions) {
  const maxBatch = o.maxBatch ?? 5000;
  const flushMs = o.flushMs ?? 20;
  const insertTimeoutMs = o.insertTimeoutMs ?? 60_000;
  const lingerMs = o.lingerMs ?? 0;
  const minBatch = o.minBatch ?? 1000;
  let running = false;
  let paused = false;
  let loops: Promise<void>[] = [];
  const resumeWaiters: Array<() => void> = [];
  const wakeAll = () => {
    for (const w of resumeWaiters.splice(0)) w();
  };

  async function run(): Promise<void> {
    let backoff = 100;
    while (running) {
      if (paused) {
        await new Promise<void>((r) => resumeWaiters.push(r));
        continue;
      }
      let batch = await o.queue.take(maxBatch, flushMs);
      if (!batch) continue;
      if (lingerMs > 0 && batch.samples.length < minBatch) {
        await new Promise((r) => setTimeout(r, lingerMs));
        const more = await o.queue.take(maxBatch - batch.samples.length, 0);
        if (more) batch = merge(batch, more);
      }
      if (paused) {
        batch.nack(); // paused while waiting for this batch
        continue;
      }
      try {
        const stored = await withTimeout(o.store.insert(batch.samples), insertTimeoutMs, "the insert did not settle");
        batch.ack();
        backoff = 100;
        o.counters.inc("tether_telemetry_samples_stored_total", undefined, stored);
        o.counters.inc("tether_telemetry_samples_duplicate_total", undefined, batch.samples.length - stored);
      } catch (err) {
        batch.nack();
        o.counters.inc("tether_telemetry_write_failures_total");
        o.log.warn({ err, samples: batch.samples.length, retryInMs: backoff }, "telemetry write failed; batch requeued");
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 5000);
      }
    }
  }

  return {
    start(): void {
      if (running) return;
      running = true;
      loops = Array.from({ length: Math.max(1, o.writers ?? 1) }, () => run());
    },
    /** Stops taking new batches after the queue drained (or `timeoutMs` passed). */
    async stop(timeoutMs = 5000): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      paused = false;
      wakeAll();
      while (o.queue.depth() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      running = false;
      wakeAll();
      await Promise.all(loops);
    },
    /** Holds writes (samples accumulate in the queue), e.g. for maintenance or tests. */
    pause(): void {
      paused = true;
    },
    resume(): void {
      paused = false;
      wakeAll();
    },
  };
}
