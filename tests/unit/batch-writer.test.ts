import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { createMemoryQueue } from "../../src/bus/memory-queue.js";
import { createCounters } from "../../src/core/counters.js";
import { createBatchWriter } from "../../src/core/telemetry/batch-writer.js";
import type { SampleRecord } from "../../src/core/telemetry/sample.js";
import type { TelemetryRepository } from "../../src/core/ports/telemetry.js";

describe("telemetry batch writer", () => {
  it("gives up an insert that never settles, requeues its batch, and stores it on the next try", async () => {
    const queue = createMemoryQueue(1000);
    const rows: SampleRecord[] = [];
    let calls = 0;
    const store = {
      insert: (samples: SampleRecord[]) => {
        calls++;
        if (calls === 1) return new Promise<number>(() => {}); // a driver call that never settles
        rows.push(...samples);
        return Promise.resolve(samples.length);
      },
    } as unknown as TelemetryRepository;
    const counters = createCounters();
    const writer = createBatchWriter({ queue, store, counters, log: pino({ level: "silent" }), insertTimeoutMs: 50, flushMs: 5 });
    writer.start();
    const sample: SampleRecord = { deviceId: "d", metric: "m", value: 1, time: new Date(), tags: {} };
    expect(queue.push([sample])).toBe(true);
    await queue.committed(); // would wait forever behind the hung insert
    expect(rows).toEqual([sample]);
    expect(calls).toBe(2);
    expect(counters.get("tether_telemetry_write_failures_total")).toBe(1);
    await writer.stop();
  });

  it("lingers small batches into larger ones and, when a merged batch fails, requeues it in order", async () => {
    const queue = createMemoryQueue(1000);
    const stored: number[] = [];
    let calls = 0;
    const store = {
      insert: (samples: SampleRecord[]) => {
        calls++;
        if (calls === 1) return Promise.reject(new Error("database down"));
        stored.push(...samples.map((x) => x.value));
        return Promise.resolve(samples.length);
      },
    } as unknown as TelemetryRepository;
    const writer = createBatchWriter({ queue, store, counters: createCounters(), log: pino({ level: "silent" }), flushMs: 5, lingerMs: 20, minBatch: 50 });
    writer.start();
    const sample = (value: number): SampleRecord => ({ deviceId: `d${value % 7}`, metric: "m", value, time: new Date(), tags: {} });
    for (let i = 0; i < 30; i++) {
      expect(queue.push([sample(i)])).toBe(true);
      if (i % 10 === 9) await new Promise((r) => setImmediate(r)); // let the writer take some meanwhile
    }
    await queue.committed();
    expect(stored).toEqual(Array.from({ length: 30 }, (_, i) => i)); // each once, in order, after the failure
    await writer.stop();
  });
});
