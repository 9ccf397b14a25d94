import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Downlink } from "../../gen/tether/device/v1/downlink_pb.js";
import { createCounters } from "../../src/core/counters.js";
import { createUplinkReceipts } from "../../src/core/uplink/receipts.js";
import { TelemetryOutbox } from "../../src/device/telemetry-outbox.js";

const log = pino({ level: "silent" });
const clock = { now: () => new Date() };

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("uplink receipts (Tether side)", () => {
  it("waits for storage, then sends one coalesced receipt per device", async () => {
    const sent: Array<[string, Downlink]> = [];
    let release!: () => void;
    const stored = new Promise<void>((r) => (release = r));
    const receipts = createUplinkReceipts({
      link: { send: async (id, m) => void sent.push([id, m]) },
      stored: () => stored,
      clock,
      counters: createCounters(),
      log,
    });
    receipts.done("a", "a1");
    receipts.done("b", "b1");
    receipts.done("a", "a2");
    receipts.done("a", ""); // nothing to match a receipt to
    await vi.advanceTimersByTimeAsync(50);
    expect(sent).toEqual([]); // the samples are not stored yet
    release();
    await vi.advanceTimersByTimeAsync(0);
    const ids = sent.map(([id, m]) => [id, m.body.case === "receipt" ? m.body.value.messageIds : []]);
    expect(ids).toEqual([
      ["a", ["a1", "a2"]],
      ["b", ["b1"]],
    ]);
  });

  it("counts a receipt that could not be sent, and splits large ones", async () => {
    const counters = createCounters();
    const sizes: number[] = [];
    const receipts = createUplinkReceipts({
      link: {
        send: async (_id, m) => {
          sizes.push(m.body.case === "receipt" ? m.body.value.messageIds.length : 0);
          if (sizes.length === 1) throw new Error("broker away");
        },
      },
      stored: async () => {},
      clock,
      counters,
      log,
    });
    for (let i = 0; i < 1200; i++) receipts.done("a", `m${i}`);
    await receipts.drain();
    expect(sizes).toEqual([500, 500, 200]);
    expect(counters.get("tether_uplink_receipts_total", { result: "failed" })).toBe(500);
    expect(counters.get("tether_uplink_receipts_total", { result: "sent" })).toBe(700);
  });
});

describe("telemetry outbox (device side)", () => {
  function outbox(opts: { timeoutMs?: number; maxPending?: number }, online = { up: true }) {
    const published: string[] = [];
    const box = new TelemetryOutbox(opts, (p) => (online.up ? (published.push(p.toString()), true) : false), log);
    return { box, published, online };
  }

  it("resolves on the receipt and resends with backoff until then", async () => {
    const { box, published } = outbox({ timeoutMs: 1000 });
    let done = false;
    void box.add("m1", Buffer.from("one")).then(() => (done = true));
    expect(published).toEqual(["one"]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(published).toEqual(["one", "one"]); // no receipt within 1 s
    await vi.advanceTimersByTimeAsync(1000);
    expect(published).toHaveLength(2); // next wait is 2 s
    await vi.advanceTimersByTimeAsync(1000);
    expect(published).toHaveLength(3);
    box.receipted(["m1", "unknown"]);
    await vi.advanceTimersByTimeAsync(0);
    expect(done).toBe(true);
    expect(box.size()).toBe(0);
    expect(box.resent).toBe(2);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(published).toHaveLength(3);
  });

  it("holds batches while offline and resends them in order on reconnect", async () => {
    const { box, published, online } = outbox({ timeoutMs: 10_000 });
    online.up = false;
    void box.add("m1", Buffer.from("1"));
    void box.add("m2", Buffer.from("2"));
    expect(published).toEqual([]);
    online.up = true;
    box.resendAll();
    expect(published).toEqual(["1", "2"]);
    const empty = box.whenEmpty();
    box.receipted(["m2", "m1"]);
    await expect(empty).resolves.toBeUndefined();
  });

  it("gives up the oldest batch past maxPending, and every batch on close", async () => {
    const { box } = outbox({ maxPending: 2 });
    const first = box.add("m1", Buffer.from("1"));
    const second = box.add("m2", Buffer.from("2"));
    void box.add("m3", Buffer.from("3")).catch(() => {});
    await expect(first).rejects.toThrow(/outbox full/);
    expect(box.size()).toBe(2);
    box.close();
    await expect(second).rejects.toThrow(/closed/);
  });
});
