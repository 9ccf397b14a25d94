import type { PGlite } from "@electric-sql/pglite";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Aggregation } from "../../gen/tether/v1/telemetry_pb.js";
import type { TelemetryQuery } from "../../src/core/ports/telemetry.js";
import { maintainTelemetry } from "../../src/core/telemetry/retention.js";
import type { SampleRecord } from "../../src/core/telemetry/sample.js";
import type { Sql } from "../../src/store/database.js";
import { planQuery } from "../../src/store/telemetry-query.js";
import { createTelemetryStore } from "../../src/store/telemetry-store.js";
import { inProcessSql, migratedPglite } from "../helpers/pglite-in-process.js";

const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const AGGREGATIONS = [Aggregation.UNSPECIFIED, Aggregation.AVG, Aggregation.MIN, Aggregation.MAX, Aggregation.SUM, Aggregation.COUNT, Aggregation.LAST];

let db: PGlite;
let sql: Sql;
beforeAll(async () => {
  db = await migratedPglite();
  sql = inProcessSql(db);
});
afterAll(async () => {
  await sql?.end({ timeout: 1 });
  await db?.close();
});

/** Deterministic pseudo-random numbers (mulberry32), so a failure can be replayed. */
function random(seed: number) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Samples of two metrics, with and without tags, over `spanMs` from `from`. Values are multiples
 * of 1/8 so every sum is exact in float64 and the rollups can be compared for equality, not
 * closeness (with arbitrary values, sums differ in the last bits by summation order, as two raw
 * queries may). Some samples of different tags share a time, to exercise LAST's tie-break.
 */
function randomSamples(rnd: () => number, deviceId: string, from: number, spanMs: number, n: number): SampleRecord[] {
  const out: SampleRecord[] = [];
  for (let i = 0; i < n; i++) {
    const time = i > 0 && rnd() < 0.05 ? out[i - 1]!.time : new Date(from + Math.floor(rnd() * spanMs));
    const tags: Record<string, string> = rnd() < 0.3 ? {} : { room: rnd() < 0.5 ? "a" : "b" };
    out.push({ deviceId, metric: rnd() < 0.5 ? "temp" : "hum", time, value: Math.round((rnd() - 0.5) * 16_000) / 8, tags });
  }
  return out;
}

describe("planQuery", () => {
  it("reads aligned minutes and hours from the rollups and only the edges from raw samples", () => {
    const t0 = Date.UTC(2026, 0, 1, 10, 0, 30);
    expect(planQuery(t0, t0 + 3 * HOUR, HOUR)).toEqual(
      [
        { source: "telemetry", from: t0, to: t0 + 30_000 },
        { source: "telemetry_1m", from: t0 + 30_000, to: Date.UTC(2026, 0, 1, 11) },
        { source: "telemetry_1h", from: Date.UTC(2026, 0, 1, 11), to: Date.UTC(2026, 0, 1, 13) },
        { source: "telemetry_1m", from: Date.UTC(2026, 0, 1, 13), to: Date.UTC(2026, 0, 1, 13, 0) },
        { source: "telemetry", from: Date.UTC(2026, 0, 1, 13), to: t0 + 3 * HOUR },
      ].filter((p) => p.from < p.to),
    );
    expect(planQuery(t0, t0 + HOUR, 5 * MIN).map((p) => p.source)).toEqual(["telemetry", "telemetry_1m", "telemetry"]);
    expect(planQuery(t0, t0 + HOUR, 90_000)).toEqual([{ source: "telemetry", from: t0, to: t0 + HOUR }]);
    expect(planQuery(t0, t0 + 20_000, MIN)).toEqual([{ source: "telemetry", from: t0, to: t0 + 20_000 }]);
  });
});

describe("telemetry rollups (embedded PGlite, the unnest path)", () => {
  it("answer every aggregation exactly as the raw samples do, with resent samples not counted twice", async () => {
    const store = createTelemetryStore(sql);
    const rnd = random(24);
    const from = Date.UTC(2026, 2, 3, 22, 17, 11, 250); // crosses midnight: two daily partitions
    const span = 5 * HOUR;
    const samples = randomSamples(rnd, "r1", from, span, 6000);
    let stored = 0;
    for (let i = 0; i < samples.length; i += 700) stored += await store.insert(samples.slice(i, i + 700));
    // Redelivery: a resent slice, and the same keys with other values (the first write wins).
    expect(await store.insert(samples.slice(1000, 2500))).toBe(0);
    expect(await store.insert(samples.slice(3000, 3400).map((s) => ({ ...s, value: s.value + 1 })))).toBe(0);
    const [raw] = await sql`SELECT count(*)::int AS n FROM telemetry WHERE device_id = 'r1'`;
    expect(raw!.n).toBe(stored);
    const [m] = await sql`SELECT sum(count)::int AS n FROM telemetry_1m WHERE device_id = 'r1'`;
    const [h] = await sql`SELECT sum(count)::int AS n FROM telemetry_1h WHERE device_id = 'r1'`;
    expect([m!.n, h!.n]).toEqual([stored, stored]);

    const ranges: Array<[number, number]> = [
      [from, from + span], // unaligned at both ends
      [Date.UTC(2026, 2, 3, 23), Date.UTC(2026, 2, 4, 2)], // aligned to hours
      [from + 7 * MIN + 3_001, from + 3 * HOUR + 59_999],
    ];
    const widths = [MIN, 5 * MIN, 7 * MIN, HOUR, 2 * HOUR, DAY, 90_000, 1000];
    let compared = 0;
    for (const [start, end] of ranges)
      for (const bucketMs of widths)
        for (const aggregation of AGGREGATIONS)
          for (const metrics of [[], ["temp"]]) {
            const q: TelemetryQuery = { deviceId: "r1", metrics, start: new Date(start), end: new Date(end), bucketMs, aggregation, limit: 100_000 };
            const want = await store.queryRaw(q);
            expect(want.length).toBeGreaterThan(0);
            expect(await store.query(q), `${new Date(start).toISOString()} +${bucketMs} ms agg ${aggregation} ${metrics}`).toEqual(want);
            compared++;
          }
    expect(compared).toBe(ranges.length * widths.length * AGGREGATIONS.length * 2);
  });

  it("pages through rollup buckets as through raw ones", async () => {
    const store = createTelemetryStore(sql);
    const start = new Date(Date.UTC(2026, 2, 3, 22, 30, 5));
    const base = { deviceId: "r1", metrics: [], start, end: new Date(start.getTime() + 4 * HOUR), bucketMs: 10 * MIN, aggregation: Aggregation.LAST, limit: 7 };
    let after: TelemetryQuery["after"];
    for (let page = 0; page < 10; page++) {
      const q = { ...base, after };
      const got = await store.query(q);
      expect(got).toEqual(await store.queryRaw(q));
      if (got.length < base.limit) break;
      after = { metric: got.at(-1)!.metric, time: got.at(-1)!.time };
    }
  });

  it("rebuilds the rollups of rows loaded without the writer", async () => {
    const store = createTelemetryStore(sql);
    const t0 = Date.UTC(2026, 2, 10, 8, 0, 0);
    await store.ensurePartitions(new Date(t0), new Date(t0 + DAY));
    await sql`INSERT INTO telemetry (device_id, metric, time, tags_key, value)
      SELECT 'bulk', 'm', ${new Date(t0)}::timestamptz + i * interval '7 seconds', '', i % 50 FROM generate_series(0, 2000) AS i`;
    await store.rebuildRollups(new Date(t0), new Date(t0 + DAY));
    await store.rebuildRollups(new Date(t0), new Date(t0 + DAY)); // idempotent
    const q: TelemetryQuery = {
      deviceId: "bulk",
      metrics: [],
      start: new Date(t0 + 1234),
      end: new Date(t0 + 4 * HOUR),
      bucketMs: MIN,
      aggregation: Aggregation.AVG,
      limit: 10_000,
    };
    expect(await store.query(q)).toEqual(await store.queryRaw(q));
  });

  it("retention drops each tier at its own age and the coarser tiers keep answering", async () => {
    const store = createTelemetryStore(sql);
    const now = Date.UTC(2026, 8, 15, 12);
    const at = (daysAgo: number) => now - daysAgo * DAY;
    const sample = (daysAgo: number, value: number): SampleRecord => ({ deviceId: "ret", metric: "m", time: new Date(at(daysAgo)), value, tags: {} });
    expect(await store.insert([sample(100, 1), sample(40, 2), sample(10, 3)])).toBe(3);
    const clock = { now: () => new Date(now) };
    const dropped = await maintainTelemetry(store, clock, { raw: 30, "1m": 90, "1h": 365 }, pino({ level: "silent" }));
    const day = (daysAgo: number) => new Date(at(daysAgo)).toISOString().slice(0, 10).replace(/-/g, "");
    expect(dropped).toContain(`telemetry_${day(100)}`);
    expect(dropped).toContain(`telemetry_${day(40)}`);
    expect(dropped).toContain(`telemetry_1m_${day(100)}`);
    expect(dropped).not.toContain(`telemetry_1m_${day(40)}`);
    expect(dropped.some((n) => n.startsWith("telemetry_1h_"))).toBe(false);

    const q = (bucketMs: number): TelemetryQuery => ({
      deviceId: "ret",
      metrics: [],
      start: new Date(Math.floor(at(120) / DAY) * DAY),
      end: new Date(now),
      bucketMs,
      aggregation: Aggregation.SUM,
      limit: 1000,
    });
    expect((await store.query(q(0))).map((p) => p.value)).toEqual([3]); // raw: only the last 30 days
    expect((await store.query(q(MIN))).map((p) => p.value)).toEqual([2, 3]); // minutes: 90 days
    expect((await store.query(q(HOUR))).map((p) => p.value)).toEqual([1, 2, 3]); // hours: a year

    // A year later the hour rollups' months go too.
    const later = { now: () => new Date(now + 400 * DAY) };
    const droppedLater = await maintainTelemetry(store, later, { raw: 30, "1m": 90, "1h": 365 }, pino({ level: "silent" }));
    expect(droppedLater).toContain(`telemetry_1h_${day(100).slice(0, 6)}`);
    expect(await store.query({ ...q(HOUR), end: new Date(now + DAY) })).toEqual([]);
    const [{ n }] = (await sql`SELECT count(*)::int AS n FROM telemetry_1h WHERE device_id = 'ret'`) as unknown as [{ n: number }];
    expect(n).toBe(0);
  });
});
