import { describe, expect, it } from "vitest";
import { createMemoryFeed } from "../../src/bus/memory-feed.js";
import { ResourceExhaustedError } from "../../src/core/errors.js";
import { watchFeed } from "../../src/core/watch-feed.js";

describe("watchFeed", () => {
  it("delivers the initial snapshot, then matching changes in order", async () => {
    const feed = createMemoryFeed<number>();
    const ctrl = new AbortController();
    const got: number[] = [];
    const it = watchFeed(
      feed,
      (n) => n % 2 === 0,
      async () => [0],
      ctrl.signal,
    );
    const reading = (async () => {
      for await (const n of it) {
        got.push(n);
        if (got.length === 3) ctrl.abort();
      }
    })();
    await new Promise((r) => setTimeout(r, 10));
    for (const n of [1, 2, 3, 4, 6]) feed.publish(n);
    await reading;
    expect(got).toEqual([0, 2, 4]);
    expect(feed.size()).toBe(0); // unsubscribed when the watcher ended
  });

  it("cuts off a consumer that falls too far behind, and nobody else", async () => {
    const feed = createMemoryFeed<number>();
    const slow = watchFeed(feed, () => true, undefined, new AbortController().signal, 5);
    const fastCtrl = new AbortController();
    const fast: number[] = [];
    const fastReading = (async () => {
      for await (const n of watchFeed(feed, () => true, undefined, fastCtrl.signal, 5)) {
        fast.push(n);
        if (fast.length === 20) fastCtrl.abort();
      }
    })();
    const first = slow.next(); // subscribes, then waits
    await new Promise((r) => setTimeout(r, 10));
    for (let i = 0; i < 20; i++) {
      feed.publish(i);
      await new Promise((r) => setImmediate(r)); // the fast reader keeps up
    }
    expect((await first).value).toBe(0);
    await expect(slow.next()).rejects.toBeInstanceOf(ResourceExhaustedError);
    await fastReading;
    expect(fast).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it("tells the caller at once when a consumer that stopped reading overflows, and frees its buffer", async () => {
    const feed = createMemoryFeed<number>();
    let cut = 0;
    const stuck = watchFeed(
      feed,
      () => true,
      undefined,
      new AbortController().signal,
      3,
      undefined,
      () => cut++,
    );
    const first = stuck.next(); // the consumer reads once, then never again (parked behind flow control)
    await new Promise((r) => setTimeout(r, 10));
    feed.publish(0);
    expect((await first).value).toBe(0);
    for (let n = 1; n <= 10; n++) feed.publish(n);
    expect(cut).toBe(1); // called once, from the publisher, without the consumer pulling
    await expect(stuck.next()).rejects.toBeInstanceOf(ResourceExhaustedError);
    expect(feed.size()).toBe(0);
  });
});
