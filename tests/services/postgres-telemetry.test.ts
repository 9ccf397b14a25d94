import pino from "pino";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Aggregation } from "../../gen/tether/v1/telemetry_pb.js";
import { maintainTelemetry } from "../../src/core/telemetry/retention.js";
import { migrate } from "../../src/store/migrate.js";
import { createTelemetryStore } from "../../src/store/telemetry-store.js";
import { freshDatabase } from "../helpers/postgres.js";
import { expectRollupsEqualRaw, random, randomSamples } from "../helpers/telemetry-samples.js";

const DAY = 86_400_000;
let db: Awaited<ReturnType<typeof freshDatabase>>;
let sql: postgres.Sql;
beforeAll(async () => {
  db = await freshDatabase("tether_telemetry");
  await migrate(db.url, pino({ level: "silent" }));
  sql = postgres(db.url, { max: 4, onnotice: () => {} });
  await sql`INSERT INTO devices (id, uid, kind, create_time, update_time) VALUES ('probe', gen_random_uuid(), 'led', now(), now())`;
});
afterAll(async () => {
  await sql?.end();
  await db?.drop();
});

describe("telemetry storage on a real PostgreSQL", () => {
  it("creates daily partitions ahead and drops them by retention", async () => {
    const store = createTelemetryStore(sql);
    let now = new Date("2026-03-10T12:00:00Z");
    const clock = { now: () => now };
    const log = pino({ level: "silent" });
    await maintainTelemetry(store, clock, 30, log);
    expect(await store.partitions()).toEqual(["telemetry_20260309", "telemetry_20260310", "telemetry_20260311", "telemetry_20260312", "telemetry_20260313"]);
    // Samples land in their day's partition, idempotently.
    const samples = [0, 1, 2].map((d) => ({
      deviceId: "probe",
      metric: "t",
      value: d,
      time: new Date(Date.parse("2026-03-10T00:00:00Z") + d * DAY),
      tags: {},
    }));
    expect(await store.insert(samples)).toBe(3);
    expect(await store.insert(samples)).toBe(0);
    const [{ n }] = (await sql`SELECT count(*)::int AS n FROM telemetry_20260311`) as unknown as [{ n: number }];
    expect(n).toBe(1);
    // 31 days later, partitions that ended more than 30 days ago are gone, with their rows.
    now = new Date(now.getTime() + 31 * DAY);
    const dropped = await maintainTelemetry(store, clock, 30, log);
    expect(dropped).toEqual(["telemetry_20260309", "telemetry_20260310"]);
    const left = await store.query({
      deviceId: "probe",
      metrics: [],
      start: new Date(0),
      end: now,
      bucketMs: 0,
      aggregation: Aggregation.UNSPECIFIED,
      limit: 10,
    });
    expect(left.map((p) => p.value)).toEqual([1, 2]);
  });

  it("creates the same partition from racing writers without failing", async () => {
    const stores = [createTelemetryStore(sql), createTelemetryStore(sql), createTelemetryStore(sql)];
    const t = new Date("2026-05-01T08:00:00Z");
    const counts = await Promise.all(stores.map((st, i) => st.insert([{ deviceId: "probe", metric: `m${i}`, value: i, time: t, tags: {} }])));
    expect(counts).toEqual([1, 1, 1]);
  });

  it("COPY staging: idempotent under redelivery, rollups equal to the raw aggregates, odd tags intact", async () => {
    const store = createTelemetryStore(sql, { copy: true, copyMinRows: 1 });
    const from = Date.UTC(2026, 5, 30, 21, 41, 3, 500); // crosses a day and a month
    const samples = randomSamples(random(3), "probe", from, 5 * 3_600_000, 8000, true);
    let stored = 0;
    for (let i = 0; i < samples.length; i += 900) stored += await store.insert(samples.slice(i, i + 900));
    expect(await store.insert(samples.slice(2000, 5000))).toBe(0);
    expect(await store.insert(samples.slice(100, 600).map((s) => ({ ...s, value: s.value + 0.5 })))).toBe(0);
    const [{ n, m, h }] = (await sql`
      SELECT (SELECT count(*)::int FROM telemetry WHERE device_id = 'probe' AND metric IN ('temp', 'hum')) AS n,
             (SELECT sum(count)::int FROM telemetry_1m WHERE device_id = 'probe' AND metric IN ('temp', 'hum')) AS m,
             (SELECT sum(count)::int FROM telemetry_1h WHERE device_id = 'probe' AND metric IN ('temp', 'hum')) AS h`) as unknown as [
      { n: number; m: number; h: number },
    ];
    expect([n, m, h]).toEqual([stored, stored, stored]);
    const [odd] = await sql`SELECT tags_key, tags FROM telemetry WHERE device_id = 'probe' AND tags_key = ${"room=f\ng\r"} LIMIT 1`;
    expect(odd?.tags).toEqual({ room: "f\ng\r" });
    await expectRollupsEqualRaw(store, "probe", [
      [from, from + 5 * 3_600_000],
      [Date.UTC(2026, 5, 30, 23), Date.UTC(2026, 6, 1, 1)],
    ]);
  });

  it("COPY staging: writers racing on the same samples store each once and count it once", async () => {
    const stores = [0, 1, 2].map(() => createTelemetryStore(sql, { copy: true, copyMinRows: 1 }));
    const samples = randomSamples(random(5), "probe", Date.UTC(2026, 6, 2, 10), 600_000, 6000).map((s) => ({ ...s, metric: "race" }));
    // Each writer sends the samples in its own order and overlapping batches, like redeliveries.
    const counts = await Promise.all(
      stores.map(async (st, w) => {
        let n = 0;
        const order = w === 1 ? [...samples].reverse() : samples;
        for (let i = w * 250; i < order.length; i += 1000) n += await st.insert(order.slice(i, i + 1500));
        n += await st.insert(order.slice(0, w * 250));
        return n;
      }),
    );
    const [{ n, m, h }] = (await sql`
      SELECT (SELECT count(*)::int FROM telemetry WHERE metric = 'race') AS n,
             (SELECT sum(count)::int FROM telemetry_1m WHERE metric = 'race') AS m,
             (SELECT sum(count)::int FROM telemetry_1h WHERE metric = 'race') AS h`) as unknown as [{ n: number; m: number; h: number }];
    expect(counts.reduce((a, b) => a + b, 0)).toBe(n);
    expect([m, h]).toEqual([n, n]);
  });
});
