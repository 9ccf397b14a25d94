import { describe, expect, it } from "vitest";
import { createDownlinkWaiters } from "../../src/core/gateway/downlink-waiters.js";

describe("parked long polls", () => {
  it("keeps a wake-up that arrives between arming and waiting (no lost wake-up)", async () => {
    const w = createDownlinkWaiters();
    const alarm = w.arm("d1");
    w.wake("d1"); // a task is queued while the poll is still looking
    let resolved = false;
    await alarm.wait(60_000).then(() => (resolved = true));
    expect(resolved).toBe(true);
    expect(w.count()).toBe(0);
  });

  it("wakes only the device's own polls, and every one of them", async () => {
    const w = createDownlinkWaiters();
    const woke: string[] = [];
    const a1 = w
      .arm("a")
      .wait(60_000)
      .then(() => woke.push("a1"));
    const a2 = w
      .arm("a")
      .wait(60_000)
      .then(() => woke.push("a2"));
    const b = w.arm("b");
    const bWait = b.wait(60_000).then(() => woke.push("b"));
    expect(w.count("a")).toBe(2);
    w.wake("a");
    await Promise.all([a1, a2]);
    expect(woke.sort()).toEqual(["a1", "a2"]);
    expect(w.count("b")).toBe(1);
    w.wakeAll();
    await bWait;
    expect(w.count()).toBe(0);
  });

  it("ends a wait at its listen time or when the caller goes away, and forgets disarmed polls", async () => {
    const w = createDownlinkWaiters();
    await w.arm("d").wait(20);
    const abort = new AbortController();
    const waiting = w.arm("d").wait(60_000, abort.signal);
    abort.abort();
    await waiting;
    w.arm("d").disarm();
    expect(w.count()).toBe(0);
  });
});
