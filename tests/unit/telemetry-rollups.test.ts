import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { PGlite } from "@electric-sql/pglite";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Aggregation } from "../../gen/tether/v1/telemetry_pb.js";
import type { TelemetryQuery } from "../../src/core/ports/telemetry.js";
import { maintainTelemetry } from "../../src/core/telemetry/retention.js";
import type { SampleRecord } from "../../src/core/telemetry/sample.js";
import type { Sql } from "../../src/store/database.js";
import { MIGRATIONS_DIR } from "../../src/store/migrate.js";
import { planQuery } from "../../src/store/telemetry-query.js";
import { createTelemetryStore } from "../../src/store/telemetry-store.js";
import { inProcessSql, migratedPglite } from "../helpers/pglite-in-process.js";
import { expectRollupsEqualRaw, random, randomSamples } from "../helpers/telemetry-samples.js";

const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

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

    await expectRollupsEqualRaw(store, "r1", [
      [from, from + span], // unaligned at both ends
      [Date.UTC(2026, 2, 3, 23), Date.UTC(2026, 2, 4, 2)], // aligned to hours
      [from + 7 * MIN + 3_001, from + 3 * HOUR + 59_999],
    ]);
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

    // A minute retention shorter than the raw one is raised to it (the rollups answer minute buckets).
    expect(await store.insert([sample(-390, 4)])).toBe(1);
    const short = { now: () => new Date(now + 400 * DAY) };
    const none = await maintainTelemetry(store, short, { raw: 30, "1m": 1, "1h": 1 }, pino({ level: "silent" }));
    expect(none.filter((n) => n.includes(day(-390)) || n.includes(day(-390).slice(0, 6)))).toEqual([]);
  });
});

describe("migration 14 on a database that already holds samples", () => {
  it("backfills both rollup tiers, equal to the raw aggregates", async () => {
    const old = await PGlite.create();
    const files = readdirSync(MIGRATIONS_DIR)
      .filter((f) => f.endsWith(".sql"))
      .sort();
    const up = (f: string) => readFileSync(path.join(MIGRATIONS_DIR, f), "utf8").split(/^-- Down Migration/m)[0]!;
    const rollups = files.findIndex((f) => f.startsWith("1732300000014_"));
    for (const f of files.slice(0, rollups)) await old.exec(up(f));
    const oldSql = inProcessSql(old);
    try {
      // Samples written the way the writer did before rollups existed.
      const from = Date.UTC(2026, 4, 31, 21, 3, 7); // crosses a month: two hour-rollup partitions
      const samples = randomSamples(random(14), "pre", from, 6 * HOUR, 3000);
      for (const day of [Date.UTC(2026, 4, 31), Date.UTC(2026, 5, 1)])
        await oldSql.unsafe(
          `CREATE TABLE telemetry_${new Date(day).toISOString().slice(0, 10).replace(/-/g, "")} PARTITION OF telemetry FOR VALUES FROM ('${new Date(day).toISOString()}') TO ('${new Date(day + DAY).toISOString()}')`,
        );
      for (const s of samples)
        await oldSql`INSERT INTO telemetry (device_id, metric, time, tags_key, value) VALUES (${s.deviceId}, ${s.metric}, ${s.time}, ${Object.entries(s.tags)
          .map(([k, v]) => `${k}=${v}`)
          .join(",")}, ${s.value}) ON CONFLICT DO NOTHING`;
      for (const f of files.slice(rollups)) await old.exec(up(f));
      const store = createTelemetryStore(oldSql);
      expect(await store.rollupPartitions("1h")).toEqual(["telemetry_1h_202605", "telemetry_1h_202606"]);
      await expectRollupsEqualRaw(store, "pre", [[from, from + 6 * HOUR]]);
    } finally {
      await oldSql.end({ timeout: 1 });
      await old.close();
    }
  });
});
