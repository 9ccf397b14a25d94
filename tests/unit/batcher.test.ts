import { describe, expect, it } from "vitest";
import { BatcherClosedError, createBatcher } from "../../src/core/batcher.js";

/** A manual event loop: deferred flushes run when the test says so. */
function manualDefer() {
  const pending: (() => void)[] = [];
  return {
    defer: (fn: () => void) => void pending.push(fn),
    turn: () => {
      for (const fn of pending.splice(0)) fn();
    },
  };
}

/** A flush whose batches the test sees and releases one by one. */
function gatedFlush<I, O>(answer: (item: I) => O | Error) {
  const batches: I[][] = [];
  const gates: (() => void)[] = [];
  return {
    batches,
    release: () => gates.shift()?.(),
    flush: async (items: I[]) => {
      batches.push(items);
      await new Promise<void>((r) => gates.push(r));
      return items.map(answer);
    },
  };
}

const settle = () => new Promise((r) => setTimeout(r, 0));

describe("batcher (group commit)", () => {
  it("coalesces what arrives in one turn into one flush, each caller getting its own outcome in order", async () => {
    const loop = manualDefer();
    const flushed: number[][] = [];
    const b = createBatcher<number, string>({ defer: loop.defer, flush: async (items) => (flushed.push(items), items.map((i) => `r${i}`)) });
    const results = [1, 2, 3].map((i) => b.submit(i));
    expect(flushed).toEqual([]);
    loop.turn();
    expect(await Promise.all(results)).toEqual(["r1", "r2", "r3"]);
    expect(flushed).toEqual([[1, 2, 3]]);
  });

  it("gathers items that arrive during a flush into the next one, in arrival order, and caps a batch at maxItems", async () => {
    const loop = manualDefer();
    const f = gatedFlush<number, number>((i) => i * 10);
    const b = createBatcher<number, number>({ defer: loop.defer, flush: f.flush, maxItems: 3 });
    const first = b.submit(1);
    loop.turn();
    expect(f.batches).toEqual([[1]]);
    const later = [2, 3, 4, 5].map((i) => b.submit(i));
    loop.turn(); // nothing starts while the first flush runs (one flush at a time)
    expect(f.batches).toEqual([[1]]);
    f.release();
    expect(await first).toBe(10);
    await settle();
    expect(f.batches).toEqual([[1], [2, 3, 4]]);
    f.release();
    await settle();
    expect(f.batches).toEqual([[1], [2, 3, 4], [5]]);
    f.release();
    expect(await Promise.all(later)).toEqual([20, 30, 40, 50]);
  });

  it("an Error outcome rejects only its own item", async () => {
    const loop = manualDefer();
    const b = createBatcher<number, number>({ defer: loop.defer, flush: async (items) => items.map((i) => (i === 2 ? new Error("two refused") : i)) });
    const r = [1, 2, 3].map((i) => b.submit(i).then(String, (e: Error) => e.message));
    loop.turn();
    expect(await Promise.all(r)).toEqual(["1", "two refused", "3"]);
  });

  it("a flush that throws is retried item by item: one bad item does not fail its neighbours", async () => {
    const flushed: number[][] = [];
    const b = createBatcher<number, number>({
      defer: (fn) => fn(),
      flush: async (items) => {
        flushed.push(items);
        if (items.includes(2)) throw new Error("constraint broken by 2");
        return items;
      },
    });
    // Submitted before any flush runs: defer is synchronous, so hold the first flush with a batch.
    const results = await Promise.all([1, 2, 3].map((i) => b.submit(i).then(String, (e: Error) => e.message)));
    expect(results).toEqual(["1", "constraint broken by 2", "3"]);
  });

  it("a batch of several that throws retries each alone, and the retries' outcomes reach their callers", async () => {
    const loop = manualDefer();
    const flushed: number[][] = [];
    const b = createBatcher<number, number>({
      defer: loop.defer,
      flush: async (items) => {
        flushed.push(items);
        if (items.length > 1 && items.includes(2)) throw new Error("batch failed");
        if (items[0] === 2) throw new Error("2 is bad");
        return items.map((i) => i + 100);
      },
    });
    const r = [1, 2, 3].map((i) => b.submit(i).then(String, (e: Error) => e.message));
    loop.turn();
    expect(await Promise.all(r)).toEqual(["101", "2 is bad", "103"]);
    expect(flushed).toEqual([[1, 2, 3], [1], [2], [3]]);
  });

  it("a flush answering the wrong number of outcomes fails, item by item, instead of mismatching callers", async () => {
    const loop = manualDefer();
    const b = createBatcher<number, number>({ defer: loop.defer, flush: async (items) => (items.length > 1 ? [1] : items) });
    const r = [7, 8].map((i) => b.submit(i));
    loop.turn();
    expect(await Promise.all(r)).toEqual([7, 8]);
  });

  it("close flushes what was submitted, then refuses new items", async () => {
    const loop = manualDefer();
    const f = gatedFlush<number, number>((i) => i);
    const b = createBatcher<number, number>({ defer: loop.defer, flush: f.flush });
    const a = b.submit(1);
    loop.turn();
    const c = b.submit(2);
    let closed = false;
    const closing = b.close().then(() => (closed = true));
    await expect(b.submit(3)).rejects.toBeInstanceOf(BatcherClosedError);
    f.release();
    await settle();
    loop.turn();
    await settle();
    expect(closed).toBe(false);
    f.release();
    await closing;
    expect(await Promise.all([a, c])).toEqual([1, 2]);
    expect(b.pending()).toBe(0);
  });

  it("runs up to maxFlushes at once when the store can take them", async () => {
    const loop = manualDefer();
    const f = gatedFlush<number, number>((i) => i);
    const b = createBatcher<number, number>({ defer: loop.defer, flush: f.flush, maxItems: 1, maxFlushes: 2 });
    const r = [1, 2, 3].map((i) => b.submit(i));
    loop.turn();
    expect(f.batches).toEqual([[1], [2]]);
    f.release();
    await settle();
    expect(f.batches).toEqual([[1], [2], [3]]);
    f.release();
    f.release();
    expect(await Promise.all(r)).toEqual([1, 2, 3]);
  });
});
