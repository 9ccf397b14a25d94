/**
 * How much of its request window the webhook relay may use, given how busy the event loop is that
 * also serves the API, the broker and the task path. Webhook deliveries are the elastic part of
 * that work: when the loop is saturated, every subscription's window is halved per busy reading
 * (down to one request in flight, so nothing stops), and it grows back by an eighth per calm
 * reading. Under load, deliveries lag (they are at-least-once and wait in the outbox) instead of
 * tasks. Each subscription keeps its own window and breaker: a hung endpoint still holds only its own.
 */
export function createBackgroundShare(opts: { busyAbove: number }) {
  let share = 1;
  return {
    /** One reading of the loop's utilization (0–1) since the previous one. */
    observe(utilization: number): void {
      share = utilization > opts.busyAbove ? Math.max(share / 2, 1 / 256) : Math.min(1, share + 0.125);
    },
    /** Requests a subscription with window `concurrency` may have in flight now (at least 1). */
    window: (concurrency: number) => Math.max(1, Math.floor(concurrency * share)),
    share: () => share,
  };
}
