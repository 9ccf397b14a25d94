import { ResourceExhaustedError } from "./errors.js";
import type { ChangeFeed } from "./ports/index.js";

/** Changes a watcher may fall behind by before it is cut off, unless the caller says otherwise. */
export const WATCH_BUFFER = 1000;

/**
 * Streams matching items from a feed. Subscribes before reading the initial snapshot so no change
 * falls between the two; a watcher that falls more than WATCH_BUFFER changes behind is ended with
 * RESOURCE_EXHAUSTED instead of buffering without bound. Used by WatchTasks and StreamTelemetry.
 */
export async function* watchFeed<T>(
  feed: ChangeFeed<T>,
  match: (t: T) => boolean,
  initial: (() => Promise<T[]>) | undefined,
  signal: AbortSignal,
  buffer = WATCH_BUFFER,
  /** A per-item check at send time (the caller's rights as of now); false drops the item. */
  allow?: (t: T) => Promise<boolean>,
  /**
   * Called once when the watcher overflows. A consumer that stopped reading leaves this generator
   * parked in `yield` (the transport waits for flow control), where the error below is never
   * reached: the caller ends the call from outside instead (the API resets the HTTP/2 stream).
   */
  onOverflow?: () => void,
): AsyncGenerator<T> {
  const queue: T[] = [];
  let overflow = false;
  let wake: (() => void) | undefined;
  const unsubscribe = feed.subscribe((t) => {
    if (!match(t)) return;
    if (queue.length < buffer) queue.push(t);
    else if (!overflow) {
      overflow = true;
      queue.length = 0; // the watcher is done: free what it held
      onOverflow?.();
    }
    wake?.();
  });
  const onAbort = () => wake?.();
  signal.addEventListener("abort", onAbort);
  try {
    if (initial) for (const t of await initial()) if (!allow || (await allow(t))) yield t;
    while (!signal.aborted) {
      if (overflow) throw new ResourceExhaustedError(`watcher fell more than ${buffer} changes behind; re-read and watch again`);
      if (queue.length > 0) {
        const t = queue.shift()!;
        if (!allow || (await allow(t))) yield t;
        continue;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
      wake = undefined;
    }
  } finally {
    unsubscribe();
    signal.removeEventListener("abort", onAbort);
  }
}
