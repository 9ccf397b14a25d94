import type { Task } from "../../../gen/tether/v1/task_pb.js";
import { ResourceExhaustedError } from "../errors.js";
import type { ChangeFeed } from "../ports.js";

/** Changes a watcher may fall behind by before it is cut off; keeps a slow client from growing memory. */
export const WATCH_BUFFER = 1000;

/**
 * Streams matching items from a feed. Subscribes before reading the initial snapshot so no change
 * falls between the two; a watcher that falls more than WATCH_BUFFER changes behind is ended with
 * RESOURCE_EXHAUSTED instead of buffering without bound.
 */
export async function* watchFeed(
  feed: ChangeFeed<Task>,
  match: (t: Task) => boolean,
  initial: (() => Promise<Task[]>) | undefined,
  signal: AbortSignal,
): AsyncGenerator<Task> {
  const queue: Task[] = [];
  let overflow = false;
  let wake: (() => void) | undefined;
  const unsubscribe = feed.subscribe((t) => {
    if (!match(t)) return;
    if (queue.length >= WATCH_BUFFER) overflow = true;
    else queue.push(t);
    wake?.();
  });
  const onAbort = () => wake?.();
  signal.addEventListener("abort", onAbort);
  try {
    if (initial) yield* await initial();
    while (!signal.aborted) {
      if (overflow) throw new ResourceExhaustedError(`watcher fell more than ${WATCH_BUFFER} changes behind; re-read and watch again`);
      const next = queue.shift();
      if (next) {
        yield next;
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
