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
});
