/**
 * Group commit: items submitted one by one (a CreateTask, a device's ack) are flushed together,
 * one set-based statement or transaction for many items, each caller getting its own outcome.
 *
 * No timer: an idle batcher flushes on the next turn of the event loop (what arrived in the same
 * I/O phase goes together), so a lone item waits for nothing; while a flush is running, new items
 * gather and go in the next. The batch size therefore follows the load by itself: 1 at low load,
 * up to `maxItems` when the database is the bottleneck — the latency of one item is at most about
 * two flushes.
 *
 * Isolation: a flush answers per item (an item's refusal is its own), and a flush that throws
 * (a constraint one item broke, a lost connection) is retried item by item, so one bad item never
 * fails its neighbours. `flush` must therefore be safe to retry for items it did not commit; the
 * stores make that so with the state-machine guard or a primary key in the statement.
 */
export interface BatcherOptions<I, O> {
  /** Handles a batch; returns one outcome per item, in order (an Error outcome rejects that item). */
  flush(items: I[]): Promise<(O | Error)[]>;
  /** Most items per flush. @default 256 */
  maxItems?: number;
  /** Flushes running at once (more than one only where the store has a pool to run them). @default 1 */
  maxFlushes?: number;
  /** Runs `fn` on a later turn of the event loop (tests pass a synchronous or manual one). @default setImmediate */
  defer?: (fn: () => void) => void;
}

export interface Batcher<I, O> {
  /** Resolves with the item's outcome once its flush finished. */
  submit(item: I): Promise<O>;
  /** Items waiting or being flushed. */
  pending(): number;
  /** Stops taking items (submit rejects) and resolves once everything submitted was flushed. */
  close(): Promise<void>;
}

interface Entry<I, O> {
  item: I;
  resolve(value: O): void;
  reject(err: unknown): void;
}

export class BatcherClosedError extends Error {
  override readonly name = "BatcherClosedError";
}

export function createBatcher<I, O>(opts: BatcherOptions<I, O>): Batcher<I, O> {
  const maxItems = opts.maxItems ?? 256;
  const maxFlushes = opts.maxFlushes ?? 1;
  const defer = opts.defer ?? ((fn: () => void) => void setImmediate(fn));
  let queue: Entry<I, O>[] = [];
  let running = 0;
  let scheduled = false;
  let closed = false;
  let idle: (() => void) | undefined;

  function schedule(): void {
    if (scheduled || running >= maxFlushes || queue.length === 0) return;
    scheduled = true;
    defer(() => {
      scheduled = false;
      start();
    });
  }

  function start(): void {
    while (running < maxFlushes && queue.length > 0) {
      const batch = queue.slice(0, maxItems);
      queue = queue.slice(batch.length);
      running++;
      void run(batch).finally(() => {
        running--;
        if (queue.length > 0) start();
        else if (running === 0) idle?.();
      });
    }
  }

  async function run(batch: Entry<I, O>[]): Promise<void> {
    let outcomes: (O | Error)[];
    try {
      outcomes = await opts.flush(batch.map((e) => e.item));
      if (outcomes.length !== batch.length) throw new Error(`a batch of ${batch.length} got ${outcomes.length} outcomes`);
    } catch (err) {
      if (batch.length === 1) return batch[0]!.reject(err);
      // Something in the batch broke the whole statement: each item alone, so only its own fails.
      for (const e of batch) await run([e]);
      return;
    }
    for (const [i, o] of outcomes.entries()) {
      if (o instanceof Error) batch[i]!.reject(o);
      else batch[i]!.resolve(o);
    }
  }

  return {
    submit(item) {
      if (closed) return Promise.reject(new BatcherClosedError("the batcher is closed"));
      return new Promise<O>((resolve, reject) => {
        queue.push({ item, resolve, reject });
        schedule();
      });
    },
    pending: () => queue.length + running,
    close() {
      closed = true;
      if (queue.length === 0 && running === 0) return Promise.resolve();
      return new Promise<void>((resolve) => {
        idle = resolve;
        schedule();
      });
    },
  };
}
