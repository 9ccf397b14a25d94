import { timestampFromDate, timestampDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { Aggregation } from "../../gen/tether/v1/telemetry_pb.js";
import { TelemetryService } from "../../gen/tether/v1/telemetry_service_pb.js";
import { metricTopic } from "../../src/protocol/topics.js";
import { eventually, rawDevice } from "../helpers/devices.js";
import { connectClient, startTestStack, type TestStack } from "../helpers/stack.js";

let s: TestStack;
beforeAll(async () => {
  s = await startTestStack();
});
afterAll(async () => {
  await s?.cleanup();
});

const telemetry = () => connectClient(s, TelemetryService, "grpc");
const sensor = (id: string) =>
  connectClient(s, DeviceService, "connect").createDevice({ deviceId: id, device: { kind: { case: "coffeeMachine", value: {} } } });
const HOUR = 3_600_000;
// A fixed hour in the recent past, aligned so buckets are predictable.
const base = Math.floor((Date.now() - 2 * HOUR) / HOUR) * HOUR;
const at = (ms: number) => timestampFromDate(new Date(base + ms));
const range = { startTime: at(0), endTime: at(HOUR) };
const stored = () => s.app.counters.get("tether_telemetry_samples_stored_total");

describe("telemetry ingestion and queries", () => {
  it("stores exactly what was sent, raw and in bucket aggregates", async () => {
    await sensor("t-coffee");
    const dev = await rawDevice(s, "t-coffee");
    try {
      // 120 samples, one every 30 s: temperature 0..119, water level constant 50.
      const samples = Array.from({ length: 120 }, (_, i) => [
        { metric: "temperature", value: i, time: at(i * 30_000) },
        { metric: "water_level", value: 50, time: at(i * 30_000), tags: { tank: "main" } },
      ]).flat();
      for (let i = 0; i < samples.length; i += 60) await dev.send({ case: "telemetry", value: { samples: samples.slice(i, i + 60) } });
      await eventually(async () => stored() >= 240, 10_000, "240 samples stored");

      const raw = await telemetry().queryTelemetry({ parent: "devices/t-coffee", metrics: ["temperature"], ...range, pageSize: 10_000 });
      expect(raw.points).toHaveLength(120);
      expect(raw.points.map((p) => p.value)).toEqual(Array.from({ length: 120 }, (_, i) => i));
      expect(timestampDate(raw.points[0]!.time!).getTime()).toBe(base);

      // 10-minute buckets: 20 samples each.
      const q = (aggregation: Aggregation) =>
        telemetry().queryTelemetry({ parent: "devices/t-coffee", metrics: ["temperature"], ...range, bucketWidth: { seconds: 600n }, aggregation });
      const avg = await q(Aggregation.AVG);
      expect(avg.points).toHaveLength(6);
      expect(avg.points.map((p) => p.value)).toEqual([9.5, 29.5, 49.5, 69.5, 89.5, 109.5]);
      expect(avg.points.every((p) => p.count === 20n)).toBe(true);
      expect((await q(Aggregation.MIN)).points.map((p) => p.value)).toEqual([0, 20, 40, 60, 80, 100]);
      expect((await q(Aggregation.MAX)).points.map((p) => p.value)).toEqual([19, 39, 59, 79, 99, 119]);
      expect((await q(Aggregation.SUM)).points[0]!.value).toBe(190);
      expect((await q(Aggregation.COUNT)).points[0]!.value).toBe(20);
      expect((await q(Aggregation.LAST)).points.map((p) => p.value)).toEqual([19, 39, 59, 79, 99, 119]);

      // Pages are complete and in (metric, time) order.
      const seen: string[] = [];
      let token = "";
      do {
        const page = await telemetry().queryTelemetry({ parent: "devices/t-coffee", ...range, pageSize: 50, pageToken: token });
        seen.push(...page.points.map((p) => `${p.metric}@${timestampDate(p.time!).toISOString()}`));
        token = page.nextPageToken;
      } while (token);
      expect(seen).toHaveLength(240);
      expect(new Set(seen).size).toBe(240);

      const latest = await telemetry().getLatestTelemetry({ parent: "devices/t-coffee" });
      expect(latest.samples.map((x) => [x.metric, x.value, x.tags])).toEqual([
        ["temperature", 119, {}],
        ["water_level", 50, { tank: "main" }],
      ]);
      const device = await connectClient(s, DeviceService, "grpc").getDevice({ name: "devices/t-coffee" });
      expect(device.latestTelemetry.map((x) => `${x.metric}=${x.value}`)).toEqual(["temperature=119", "water_level=50"]);
    } finally {
      await dev.close();
    }
  });

  it("does not duplicate a redelivered batch", async () => {
    await sensor("t-dup");
    const dev = await rawDevice(s, "t-dup");
    try {
      const batch = { samples: Array.from({ length: 10 }, (_, i) => ({ metric: "power_w", value: i * 1.5, time: at(i * 1000) })) };
      const dupsBefore = s.app.counters.get("tether_telemetry_samples_duplicate_total");
      for (let i = 0; i < 3; i++) await dev.send({ case: "telemetry", value: batch });
      await eventually(async () => s.app.counters.get("tether_telemetry_samples_duplicate_total") - dupsBefore >= 20, 8000, "duplicates ignored");
      const res = await telemetry().queryTelemetry({ parent: "devices/t-dup", ...range });
      expect(res.points.map((p) => p.value)).toEqual(batch.samples.map((x) => x.value));
    } finally {
      await dev.close();
    }
  });

  it("stores a plain number from the legacy metrics topic, and refuses what is not a number", async () => {
    await sensor("t-plain");
    const dev = await rawDevice(s, "t-plain");
    try {
      const t0 = Date.now();
      await dev.publishRaw(metricTopic("t-plain", "temperature"), "23.5");
      for (const bad of ["warm", "NaN", "Infinity", ""]) await dev.publishRaw(metricTopic("t-plain", "temperature"), bad);
      await eventually(async () => (await telemetry().getLatestTelemetry({ parent: "devices/t-plain" })).samples.length === 1, 8000, "the plain sample");
      const res = await telemetry().queryTelemetry({ parent: "devices/t-plain", startTime: timestampFromDate(new Date(t0 - 60_000)) });
      expect(res.points.map((p) => [p.metric, p.value])).toEqual([["temperature", 23.5]]);
      expect(s.app.counters.get("tether_telemetry_samples_rejected_total", { reason: "not_a_number" })).toBeGreaterThanOrEqual(4);
    } finally {
      await dev.close();
    }
  });

  it("refuses bad samples with a reason and keeps the rest of the batch", async () => {
    await sensor("t-bad");
    const dev = await rawDevice(s, "t-bad");
    const c = (reason: string) => s.app.counters.get("tether_telemetry_samples_rejected_total", { reason });
    const before = { future: c("in_future"), old: c("too_old"), metric: c("bad_metric"), nan: c("not_finite") };
    try {
      await dev.send({
        case: "telemetry",
        value: {
          samples: [
            { metric: "ok_metric", value: 1, time: at(0) },
            { metric: "ok_metric", value: Number.NaN, time: at(1000) },
            { metric: "ok_metric", value: 2, time: timestampFromDate(new Date(Date.now() + 86_400_000)) },
            { metric: "ok_metric", value: 3, time: timestampFromDate(new Date(Date.now() - 30 * 86_400_000)) },
            { metric: "bad metric!", value: 4, time: at(2000) },
            { metric: "ok_metric", value: 5, time: at(3000) },
          ],
        },
      });
      await eventually(async () => (await telemetry().queryTelemetry({ parent: "devices/t-bad", ...range })).points.length === 2, 8000, "the two good samples");
      expect((await telemetry().queryTelemetry({ parent: "devices/t-bad", ...range })).points.map((p) => p.value)).toEqual([1, 5]);
      expect(c("in_future") - before.future).toBe(1);
      expect(c("too_old") - before.old).toBe(1);
      expect(c("bad_metric") - before.metric).toBe(1);
      expect(c("not_finite") - before.nan).toBe(1);
    } finally {
      await dev.close();
    }
  });

  it("keeps every sample while writes are held, and stores them all once released", async () => {
    await sensor("t-hold");
    const dev = await rawDevice(s, "t-hold");
    try {
      s.app.telemetryWriter.pause();
      for (let b = 0; b < 20; b++) {
        await dev.send({
          case: "telemetry",
          value: { samples: Array.from({ length: 50 }, (_, i) => ({ metric: "flow", value: b * 50 + i, time: at((b * 50 + i) * 100) })) },
        });
      }
      await new Promise((r) => setTimeout(r, 300));
      expect((await telemetry().queryTelemetry({ parent: "devices/t-hold", ...range })).points).toHaveLength(0);
      s.app.telemetryWriter.resume();
      await eventually(
        async () => (await telemetry().queryTelemetry({ parent: "devices/t-hold", ...range, pageSize: 5000 })).points.length === 1000,
        10_000,
        "all 1000 samples",
      );
    } finally {
      s.app.telemetryWriter.resume();
      await dev.close();
    }
  });

  it("streams samples live, ephemeral metrics included, without storing ephemeral ones", async () => {
    await sensor("t-live");
    const dev = await rawDevice(s, "t-live");
    const ctrl = new AbortController();
    try {
      const got: string[] = [];
      const stream = (async () => {
        for await (const r of telemetry().streamTelemetry({ parent: "devices/t-live" }, { signal: ctrl.signal })) {
          got.push(`${r.sample!.metric}=${r.sample!.value}`);
          if (got.length === 2) break;
        }
      })();
      await new Promise((r) => setTimeout(r, 200));
      const now = timestampFromDate(new Date());
      await dev.send({
        case: "telemetry",
        value: {
          samples: [
            { metric: "signal_strength", value: -67, time: now },
            { metric: "temperature", value: 21, time: now },
          ],
        },
      });
      await stream;
      expect(got.sort()).toEqual(["signal_strength=-67", "temperature=21"]);
      await eventually(async () => (await telemetry().getLatestTelemetry({ parent: "devices/t-live" })).samples.length === 1, 5000, "temperature stored");
      expect((await telemetry().getLatestTelemetry({ parent: "devices/t-live" })).samples[0]!.metric).toBe("temperature");
    } finally {
      ctrl.abort();
      await dev.close();
    }
  });

  it("validates queries", async () => {
    await expect(telemetry().queryTelemetry({ parent: "devices/t-coffee" })).rejects.toMatchObject({ code: Code.InvalidArgument });
    await expect(telemetry().queryTelemetry({ parent: "devices/t-coffee", ...range, aggregation: Aggregation.MAX })).rejects.toMatchObject({
      code: Code.InvalidArgument,
    });
    await expect(telemetry().queryTelemetry({ parent: "devices/t-coffee", ...range, bucketWidth: { nanos: 1000 } })).rejects.toMatchObject({
      code: Code.InvalidArgument,
    });
    await expect(telemetry().queryTelemetry({ parent: "devices/nobody", ...range })).rejects.toMatchObject({ code: Code.NotFound });
  });
});
