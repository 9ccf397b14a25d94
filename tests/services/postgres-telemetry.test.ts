import pino from "pino";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Aggregation } from "../../gen/tether/v1/telemetry_pb.js";
import { maintainTelemetry } from "../../src/core/telemetry/retention.js";
import { migrate } from "../../src/store/migrate.js";
import { createTelemetryStore } from "../../src/store/telemetry-store.js";
import { freshDatabase } from "../helpers/postgres.js";

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
});
