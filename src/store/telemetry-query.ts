import { Aggregation } from "../../gen/tether/v1/telemetry_pb.js";
import type { TelemetryPointRecord, TelemetryQuery } from "../core/ports/telemetry.js";
import type { Sql } from "./database.js";

const MINUTE = 60_000;
const HOUR = 3_600_000;
const EPOCH = "TIMESTAMPTZ '1970-01-01T00:00:00Z'";

/**
 * Aggregates over partial aggregates (one row per sample, minute or hour): every part yields
 * mn, mx, sm, n and the latest (lt, lk, lv). LAST breaks a tie in time by tags_key, like the raw query.
 */
const MERGED: Record<Aggregation, string> = {
  [Aggregation.UNSPECIFIED]: "sum(sm) / sum(n)::float8",
  [Aggregation.AVG]: "sum(sm) / sum(n)::float8",
  [Aggregation.MIN]: "min(mn)",
  [Aggregation.MAX]: "max(mx)",
  [Aggregation.SUM]: "sum(sm)",
  [Aggregation.COUNT]: "sum(n)::float8",
  [Aggregation.LAST]: "(array_agg(lv ORDER BY lt DESC, lk DESC))[1]",
};

const RAW: Record<Aggregation, string> = {
  [Aggregation.UNSPECIFIED]: "avg(value)",
  [Aggregation.AVG]: "avg(value)",
  [Aggregation.MIN]: "min(value)",
  [Aggregation.MAX]: "max(value)",
  [Aggregation.SUM]: "sum(value)",
  [Aggregation.COUNT]: "count(*)::float8",
  [Aggregation.LAST]: "(array_agg(value ORDER BY time DESC, tags_key DESC))[1]",
};

const ceilTo = (t: number, step: number) => Math.ceil(t / step) * step;
const floorTo = (t: number, step: number) => Math.floor(t / step) * step;

/** A piece of the range and where it is read from. */
export interface QueryPart {
  source: "telemetry" | "telemetry_1m" | "telemetry_1h";
  from: number;
  to: number;
}

/**
 * Splits [start, end) for a bucket width: the widest rollup the width is a multiple of covers the
 * aligned middle, finer tiers the edges, raw samples what is left (under a minute at each end).
 * Every bucket boundary of such a width is a boundary of the tier (buckets count from the epoch),
 * so rollup rows never straddle a bucket and the merged result equals the raw aggregate.
 */
export function planQuery(start: number, end: number, bucketMs: number, useRollups = true): QueryPart[] {
  const parts: QueryPart[] = [];
  const add = (source: QueryPart["source"], from: number, to: number) => {
    if (from < to) parts.push({ source, from, to });
  };
  const m1 = ceilTo(start, MINUTE);
  const m2 = floorTo(end, MINUTE);
  if (!useRollups || bucketMs % MINUTE !== 0 || m1 >= m2) {
    add("telemetry", start, end);
    return parts;
  }
  add("telemetry", start, m1);
  const h1 = ceilTo(m1, HOUR);
  const h2 = floorTo(m2, HOUR);
  if (bucketMs % HOUR === 0 && h1 < h2) {
    add("telemetry_1m", m1, h1);
    add("telemetry_1h", h1, h2);
    add("telemetry_1m", h2, m2);
  } else {
    add("telemetry_1m", m1, m2);
  }
  add("telemetry", m2, end);
  return parts;
}

/** QueryTelemetry on PostgreSQL/PGlite: raw samples, or buckets from rollups where the width allows. */
export async function queryTelemetry(sql: Sql, q: TelemetryQuery, useRollups = true): Promise<TelemetryPointRecord[]> {
  const metrics = q.metrics.length ? sql`AND metric IN ${sql(q.metrics)}` : sql``;
  if (q.bucketMs === 0) {
    const after = q.after ? sql`AND (metric, time) > (${q.after.metric}, ${q.after.time})` : sql``;
    const rows = await sql`
      SELECT metric, time, value FROM telemetry
      WHERE device_id = ${q.deviceId} AND time >= ${q.start} AND time < ${q.end} ${metrics} ${after}
      ORDER BY metric, time LIMIT ${q.limit}`;
    return rows.map((r) => ({ metric: String(r.metric), time: r.time as Date, value: Number(r.value), count: 1 }));
  }
  const width = `${q.bucketMs} milliseconds`;
  const parts = planQuery(q.start.getTime(), q.end.getTime(), q.bucketMs, useRollups);
  const toPoint = (r: Record<string, unknown>) => ({ metric: String(r.metric), time: r.bucket as Date, value: Number(r.value), count: Number(r.count) });

  if (parts.length === 1 && parts[0]!.source === "telemetry") {
    // The bucket is named in a subquery: HAVING cannot repeat a parameterised GROUP BY expression
    // (each mention is a new parameter, so PostgreSQL sees a different expression).
    const after = q.after ? sql`HAVING (metric, bucket) > (${q.after.metric}, ${q.after.time})` : sql``;
    const rows = await sql`
      SELECT metric, bucket, ${sql.unsafe(RAW[q.aggregation])} AS value, count(*)::int AS count
      FROM (SELECT metric, date_bin(${width}::interval, time, ${sql.unsafe(EPOCH)}) AS bucket, time, tags_key, value
            FROM telemetry WHERE device_id = ${q.deviceId} AND time >= ${q.start} AND time < ${q.end} ${metrics}) AS s
      GROUP BY metric, bucket ${after}
      ORDER BY metric, bucket LIMIT ${q.limit}`;
    return rows.map(toPoint);
  }

  const selects = parts.map((p) => {
    const from = new Date(p.from);
    const to = new Date(p.to);
    if (p.source === "telemetry")
      return sql`
        SELECT metric, date_bin(${width}::interval, time, ${sql.unsafe(EPOCH)}) AS bucket,
               value AS mn, value AS mx, value AS sm, 1::bigint AS n, time AS lt, tags_key AS lk, value AS lv
        FROM telemetry WHERE device_id = ${q.deviceId} AND time >= ${from} AND time < ${to} ${metrics}`;
    return sql`
      SELECT metric, date_bin(${width}::interval, bucket, ${sql.unsafe(EPOCH)}) AS bucket,
             min AS mn, max AS mx, sum AS sm, count AS n, last_time AS lt, tags_key AS lk, last_value AS lv
      FROM ${sql(p.source)} WHERE device_id = ${q.deviceId} AND bucket >= ${from} AND bucket < ${to} ${metrics}`;
  });
  const union = selects.reduce((acc, s) => sql`${acc} UNION ALL ${s}`);
  const after = q.after ? sql`HAVING (metric, bucket) > (${q.after.metric}, ${q.after.time})` : sql``;
  const rows = await sql`
    SELECT metric, bucket, ${sql.unsafe(MERGED[q.aggregation])} AS value, sum(n)::int AS count
    FROM (${union}) AS parts
    GROUP BY metric, bucket ${after}
    ORDER BY metric, bucket LIMIT ${q.limit}`;
  return rows.map(toPoint);
}
