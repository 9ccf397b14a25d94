/**
 * Runs tasks one at a time per key and concurrently across keys: per-device order for uplink
 * without one slow device holding up the others.
 */
export function createKeyedQueue(onError: (err: unknown, key: string) => void) {
  const tails = new Map<string, Promise<void>>();
  return {
    push(key: string, fn: () => Promise<void>): Promise<void> {
      const run = (tails.get(key) ?? Promise.resolve()).then(fn).catch((err: unknown) => onError(err, key));
      tails.set(key, run);
      void run.then(() => {
        if (tails.get(key) === run) tails.delete(key);
      });
      return run;
    },
    /** Resolves once every task pushed so far has finished. */
    async drain(): Promise<void> {
      while (tails.size > 0) await Promise.all([...tails.values()]);
    },
  };
}
