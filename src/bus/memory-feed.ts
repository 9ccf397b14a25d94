import type { ChangeFeed } from "../core/ports/index.js";

/**
 * The in-process ChangeFeed of the embedded mode. A throwing subscriber cannot break the
 * publisher or the other subscribers.
 */
export function createMemoryFeed<T>(onError: (err: unknown) => void = () => {}): ChangeFeed<T> & { size(): number } {
  const handlers = new Set<(item: T) => void>();
  return {
    publish(item) {
      for (const h of handlers) {
        try {
          h(item);
        } catch (err) {
          onError(err);
        }
      }
    },
    subscribe(handler) {
      handlers.add(handler);
      return () => handlers.delete(handler);
    },
    size: () => handlers.size,
  };
}
