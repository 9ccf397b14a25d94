/**
 * A fan-out of change notifications (task changed, device changed) to every watcher in every
 * replica. In-process in embedded mode (`src/bus/memory-feed.ts`); RabbitMQ in production.
 * Delivery is best effort: watchers re-read the store when they need certainty.
 */
export interface ChangeFeed<T> {
  publish(item: T): void;
  /** Calls `handler` for every item published after this call; returns the unsubscribe function. */
  subscribe(handler: (item: T) => void): () => void;
}
