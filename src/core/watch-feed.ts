import { ResourceExhaustedError } from "./errors.js";
import type { ChangeFeed } from "./ports.js";

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
): AsyncGenerator<T> {
  const queue: T[] = [];
  let overflow = false;
  let wake: (() => void) | undefined;
  const unsubscribe = feed.subscribe((t) => {
    if (!match(t)) return;
    if (queue.length >= buffer) overflow = true;
    else queue.push(t);
    wake?.();
  });
  const onAbort = () => wake?.();
  signal.addEventListener("abort", onAbort);
  try {
    if (initial) yield* await initial();
    while (!signal.aborted) {
      if (overflow) throw new ResourceExhaustedError(`watcher fell more than ${buffer} changes behind; re-read and watch again`);
      if (queue.length > 0) {
        yield queue.shift()!;
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
