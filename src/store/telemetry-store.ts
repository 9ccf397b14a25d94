import { Aggregation } from "../../gen/tether/v1/telemetry_pb.js";
import { tagsKey } from "../core/telemetry/sample.js";
import type { TelemetryRepository } from "../core/ports/telemetry.js";
import type { Sql } from "./database.js";

const DAY = 86_400_000;
const AGG: Record<Aggregation, string> = {
  [Aggregation.UNSPECIFIED]: "avg(value)",
  [Aggregation.AVG]: "avg(value)",
  [Aggregation.MIN]: "min(value)",
  [Aggregation.MAX]: "max(value)",
  [Aggregation.SUM]: "sum(value)",
  [Aggregation.COUNT]: "count(*)::float8",
  [Aggregation.LAST]: "(array_agg(value ORDER BY time DESC))[1]",
};

const dayStart = (t: number) => t - (((t % DAY) + DAY) % DAY);
const partitionName = (day: number) => `telemetry_${new Date(day).toISOString().slice(0, 10).replace(/-/g, "")}`;

/** TelemetryRepository on PostgreSQL/PGlite: daily range partitions, set-based idempotent inserts. */
export function createTelemetryStore(sql: Sql): TelemetryRepository & { partitions(): Promise<string[]> } {
  const known = new Set<number>();

  async function ensureDay(day: number): Promise<void> {
    if (known.has(day)) return;
    try {
      await sql.unsafe(
        `CREATE TABLE IF NOT EXISTS ${partitionName(day)} PARTITION OF telemetry FOR VALUES FROM ('${new Date(day).toISOString()}') TO ('${new Date(day + DAY).toISOString()}')`,
      );
    } catch (err) {
      // Another replica created it at the same moment.
      if ((err as { code?: string }).code !== "42P07") throw err;
    }
    known.add(day);
  }

  async function partitions(): Promise<string[]> {
    const rows = await sql`
      SELECT c.relname AS name FROM pg_inherits i
      JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
      WHERE p.relname = 'telemetry' ORDER BY c.relname`;
    return rows.map((r) => String(r.name));
  }

  return {
    partitions,

    async ensurePartitions(from, to) {
      for (let day = dayStart(from.getTime()); day < to.getTime(); day += DAY) await ensureDay(day);
    },

    async insert(samples) {
      if (samples.length === 0) return 0;
      for (const day of new Set(samples.map((s) => dayStart(s.time.getTime())))) await ensureDay(day);
      const cols = {
        d: samples.map((s) => s.deviceId),
        m: samples.map((s) => s.metric),
        t: samples.map((s) => s.time.toISOString()),
        k: samples.map((s) => tagsKey(s.tags)),
        v: samples.map((s) => String(s.value)),
        g: samples.map((s) => (Object.keys(s.tags).length ? JSON.stringify(s.tags) : null)) as string[],
      };
      // One statement, no transaction: the rows are decoded once (MATERIALIZED), inserted idempotently,
      // and the latest value per metric is upserted from the same set.
      const [{ n }] = (await sql`
        WITH u AS MATERIALIZED (
          SELECT * FROM unnest(${sql.array(cols.d)}::text[], ${sql.array(cols.m)}::text[], ${sql.array(cols.t)}::timestamptz[],
                               ${sql.array(cols.k)}::text[], ${sql.array(cols.v)}::float8[], ${sql.array(cols.g)}::jsonb[]) AS u(d, m, t, k, v, g)),
        ins AS (
          INSERT INTO telemetry (device_id, metric, time, tags_key, value, tags)
          SELECT d, m, t, k, v, g FROM u
          ON CONFLICT DO NOTHING RETURNING 1),
        latest AS (
          -- Samples of devices deleted meanwhile are stored but get no "latest" (the JOIN drops them).
          INSERT INTO telemetry_latest (device_id, metric, time, value, tags)
          SELECT DISTINCT ON (d, m) d, m, t, v, g FROM u JOIN devices ON devices.id = u.d
          ORDER BY d, m, t DESC
          ON CONFLICT (device_id, metric) DO UPDATE SET time = excluded.time, value = excluded.value, tags = excluded.tags
          WHERE telemetry_latest.time <= excluded.time)
        SELECT count(*)::int AS n FROM ins`) as unknown as [{ n: number }];
      return n;
    },

    async query(q) {
      const metrics = q.metrics.length ? sql`AND metric IN ${sql(q.metrics)}` : sql``;
      if (q.bucketMs === 0) {
        const after = q.after ? sql`AND (metric, time) > (${q.after.metric}, ${q.after.time})` : sql``;
        const rows = await sql`
          SELECT metric, time, value FROM telemetry
          WHERE device_id = ${q.deviceId} AND time >= ${q.start} AND time < ${q.end} ${metrics} ${after}
          ORDER BY metric, time LIMIT ${q.limit}`;
        return rows.map((r) => ({ metric: String(r.metric), time: r.time as Date, value: Number(r.value), count: 1 }));
      }
      const bucket = sql`date_bin(${`${q.bucketMs} milliseconds`}::interval, time, TIMESTAMPTZ '1970-01-01T00:00:00Z')`;
      const after = q.after ? sql`HAVING (metric, ${bucket}) > (${q.after.metric}, ${q.after.time})` : sql``;
      const rows = await sql`
        SELECT metric, ${bucket} AS bucket, ${sql.unsafe(AGG[q.aggregation])} AS value, count(*)::int AS count
        FROM telemetry
        WHERE device_id = ${q.deviceId} AND time >= ${q.start} AND time < ${q.end} ${metrics}
        GROUP BY metric, bucket ${after}
        ORDER BY metric, bucket LIMIT ${q.limit}`;
      return rows.map((r) => ({ metric: String(r.metric), time: r.bucket as Date, value: Number(r.value), count: Number(r.count) }));
    },

    async latest(deviceId) {
      const rows = await sql`SELECT metric, time, value, tags FROM telemetry_latest WHERE device_id = ${deviceId} ORDER BY metric`;
      return rows.map((r) => ({
        deviceId,
        metric: String(r.metric),
        time: r.time as Date,
        value: Number(r.value),
        tags: (r.tags as Record<string, string> | null) ?? {},
      }));
    },

    async dropPartitionsBefore(before) {
      const dropped: string[] = [];
      for (const name of await partitions()) {
        const m = /^telemetry_(\d{4})(\d{2})(\d{2})$/.exec(name);
        if (!m) continue;
        const day = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
        if (day + DAY > before.getTime()) continue;
        await sql.unsafe(`DROP TABLE IF EXISTS ${name}`);
        known.delete(day);
        dropped.push(name);
      }
      return dropped;
    },
  };
}
