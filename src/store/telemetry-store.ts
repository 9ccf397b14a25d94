import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { TelemetryRepository } from "../core/ports/telemetry.js";
import { withTimeout } from "../core/timeout.js";
import { type SampleRecord, tagsKey } from "../core/telemetry/sample.js";
import type { Sql } from "./database.js";
import { createTelemetryPartitions } from "./telemetry-partitions.js";
import { queryTelemetry } from "./telemetry-query.js";
import { type TxSql, withTransaction } from "./transaction.js";

const EPOCH = "TIMESTAMPTZ '1970-01-01T00:00:00Z'";
/** A COPY of one batch (≤ 5,000 rows, well under a second) that has not completed after this failed. */
const COPY_TIMEOUT_MS = 20_000;

export interface TelemetryStoreOptions {
  /**
   * Stage each batch with COPY FROM STDIN into a temporary table (PostgreSQL). Off: the batch
   * travels as unnest() arrays in one statement, the path for the embedded PGlite, whose socket
   * server drops the connection on COPY FROM STDIN (measured with pglite-socket 0.2.17). @default false
   */
  copy?: boolean;
  /**
   * Smaller batches take the unnest path even with `copy`: COPY costs four more round trips
   * (BEGIN, the staging table, COPY, COMMIT), which only a large batch repays (measured on
   * PostgreSQL 15 here: 250-row batches 57k rows/s by COPY against 91k by unnest; 5,000-row
   * batches within noise of each other). @default 1000
   */
  copyMinRows?: number;
  /**
   * One statement at a time reaches this database (the embedded PGlite): rows need no lock order,
   * so the writer skips the sort that keeps concurrent writers from deadlocking (on PGlite that
   * sort was about a sixth of a 5,000-row insert). @default false
   */
  singleWriter?: boolean;
}

// The latest value of a group is the second element of the greatest [epoch seconds, value] pair:
// cheaper than array_agg(value ORDER BY time DESC), which sorts every group. Exact: within one
// series times are unique (primary key), and doubles tell microseconds apart until the year 2200.
// Rollup rows merge by min/max/sum/count, and keep the later of the two "last" samples. SET
// expressions see the old row, so last_value compares against the old last_time.
const MERGE = `ON CONFLICT (device_id, metric, bucket, tags_key) DO UPDATE SET
  min = LEAST(r.min, excluded.min), max = GREATEST(r.max, excluded.max),
  sum = r.sum + excluded.sum, count = r.count + excluded.count,
  last_value = CASE WHEN excluded.last_time > r.last_time THEN excluded.last_value ELSE r.last_value END,
  last_time = GREATEST(r.last_time, excluded.last_time)`;

/**
 * The statement after the samples are in `u` (d, m, t, k, v, g): inserts them idempotently and,
 * from what the INSERT actually added (RETURNING: a resent sample is not there), merges the minute
 * and hour rollups; upserts the latest value per metric. One statement, so rollups and samples
 * commit together. Every INSERT takes its rows in key order (bytewise, the cheapest to sort; any
 * one order will do): concurrent writers holding the same
 * samples (redeliveries) then wait for each other in one order instead of deadlocking (measured:
 * without the ORDER BY, three racing writers deadlocked on the primary key within a second).
 */
const write = (ordered: boolean) => `
  ins AS (
    INSERT INTO telemetry (device_id, metric, time, tags_key, value, tags)
    SELECT d, m, t, k, v, g FROM u ${ordered ? `ORDER BY d COLLATE "C", m COLLATE "C", t, k COLLATE "C"` : ""}
    ON CONFLICT DO NOTHING RETURNING device_id, metric, time, tags_key, value),
  m1 AS MATERIALIZED (
    SELECT device_id, metric, date_bin('1 minute', time, ${EPOCH}) AS bucket, tags_key,
           min(value) AS mn, max(value) AS mx, sum(value) AS sm, count(*) AS n,
           max(time) AS lt, (max(ARRAY[date_part('epoch', time), value]))[2] AS lv
    FROM ins GROUP BY 1, 2, 3, 4),
  r1 AS (
    INSERT INTO telemetry_1m AS r (device_id, metric, bucket, tags_key, min, max, sum, count, last_time, last_value)
    SELECT * FROM m1 ORDER BY device_id COLLATE "C", metric COLLATE "C", bucket, tags_key COLLATE "C"
    ${MERGE}),
  r2 AS (
    INSERT INTO telemetry_1h AS r (device_id, metric, bucket, tags_key, min, max, sum, count, last_time, last_value)
    SELECT device_id, metric, date_bin('1 hour', bucket, ${EPOCH}) AS hb, tags_key, min(mn), max(mx), sum(sm), sum(n),
           max(lt), (max(ARRAY[date_part('epoch', lt), lv]))[2]
    FROM m1 GROUP BY device_id, metric, hb, tags_key ORDER BY device_id COLLATE "C", metric COLLATE "C", hb, tags_key COLLATE "C"
    ${MERGE}),
  latest AS (
    -- Samples of devices deleted meanwhile are stored but get no "latest" (the JOIN drops them).
    INSERT INTO telemetry_latest (device_id, metric, time, value, tags)
    SELECT DISTINCT ON (d, m) d, m, t, v, g FROM u JOIN devices ON devices.id = u.d
    ORDER BY d, m, t DESC
    ON CONFLICT (device_id, metric) DO UPDATE SET time = excluded.time, value = excluded.value, tags = excluded.tags
    WHERE telemetry_latest.time <= excluded.time)
  SELECT count(*)::int AS n FROM ins`;

const STAGE = `CREATE TEMP TABLE IF NOT EXISTS telemetry_stage (
  d text, m text, t timestamptz, k text, v double precision, g jsonb) ON COMMIT DELETE ROWS`;

/** COPY text format: backslash, tab, newline and carriage return are escaped; `\N` is NULL. */
const ESCAPES: Record<string, string> = { "\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r" };
const copyText = (s: string) => (/[\\\t\n\r]/.test(s) ? s.replace(/[\\\t\n\r]/g, (c) => ESCAPES[c]!) : s);

function copyLines(samples: SampleRecord[]): string {
  let out = "";
  for (const s of samples) {
    const key = tagsKey(s.tags);
    const tags = key === "" ? "\\N" : copyText(JSON.stringify(s.tags));
    out += `${copyText(s.deviceId)}\t${copyText(s.metric)}\t${s.time.toISOString()}\t${key === "" ? "" : copyText(key)}\t${s.value}\t${tags}\n`;
  }
  return out;
}

async function copyInsert(tx: TxSql, samples: SampleRecord[], ordered: boolean): Promise<number> {
  await tx.unsafe(STAGE);
  const stage = await tx`COPY telemetry_stage (d, m, t, k, v, g) FROM STDIN`.writable();
  // postgres.js settles the stream's end only on the server's CommandComplete: a connection lost
  // after CopyDone leaves it pending forever, and the reserved connection with it. Bounded, the
  // transaction fails, the connection goes back to the pool (which reconnects) and the batch is retried.
  await withTimeout(pipeline(Readable.from([copyLines(samples)]), stage), COPY_TIMEOUT_MS, "COPY did not complete");
  const [{ n }] = (await tx.unsafe(`WITH u AS (SELECT d, m, t, k, v, g FROM telemetry_stage), ${write(ordered)}`)) as unknown as [{ n: number }];
  return n;
}

async function unnestInsert(sql: Sql, samples: SampleRecord[], ordered: boolean): Promise<number> {
  const col = <T>(f: (s: SampleRecord) => T) => sql.array(samples.map(f) as never[]);
  // MATERIALIZED: the arrays are decoded once, though three statements read them.
  const [{ n }] = (await sql`
    WITH u AS MATERIALIZED (
      SELECT * FROM unnest(${col((s) => s.deviceId)}::text[], ${col((s) => s.metric)}::text[], ${col((s) => s.time.toISOString())}::timestamptz[],
                           ${col((s) => tagsKey(s.tags))}::text[], ${col((s) => String(s.value))}::float8[],
                           ${col((s) => (Object.keys(s.tags).length ? JSON.stringify(s.tags) : null))}::jsonb[]) AS u(d, m, t, k, v, g)),
    ${sql.unsafe(write(ordered))}`) as unknown as [{ n: number }];
  return n;
}

/**
 * TelemetryRepository on PostgreSQL/PGlite: daily range partitions, set-based idempotent inserts
 * that maintain the minute and hour rollups in the same statement, queries served from rollups
 * whenever the bucket width allows.
 */
export function createTelemetryStore(sql: Sql, options: TelemetryStoreOptions = {}) {
  const partitions = createTelemetryPartitions(sql);

  const store = {
    /** Raw sample partitions, by name. */
    partitions: () => partitions.list("telemetry"),
    /** Partitions of a rollup table, by name. */
    rollupPartitions: (tier: "1m" | "1h") => partitions.list(`telemetry_${tier}`),

    async ensurePartitions(from, to) {
      await partitions.range(from.getTime(), to.getTime());
    },

    async insert(samples) {
      if (samples.length === 0) return 0;
      await partitions.forTimes(samples.map((s) => s.time.getTime()));
      const copy = options.copy && samples.length >= (options.copyMinRows ?? 1000);
      const ordered = !options.singleWriter;
      return copy ? withTransaction(sql, (tx) => copyInsert(tx, samples, ordered)) : unnestInsert(sql, samples, ordered);
    },

    query: (q) => queryTelemetry(sql, q),

    /** The same query from raw samples only (the reference the rollups are tested and benchmarked against). */
    queryRaw: (q: Parameters<TelemetryRepository["query"]>[0]) => queryTelemetry(sql, q, false),

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

    async dropPartitionsBefore(before, tier = "raw") {
      const table = tier === "raw" ? "telemetry" : (`telemetry_${tier}` as const);
      return partitions.dropBefore(table, before.getTime());
    },

    /**
     * Recomputes the rollups of [from, to) from the raw samples (rounded out to whole hours), for
     * rows that reached `telemetry` without the writer (bulk loads, restores). Idempotent.
     */
    async rebuildRollups(from: Date, to: Date): Promise<void> {
      const a = new Date(Math.floor(from.getTime() / 3_600_000) * 3_600_000);
      const b = new Date(Math.ceil(to.getTime() / 3_600_000) * 3_600_000);
      await partitions.range(a.getTime(), b.getTime());
      await withTransaction(sql, async (tx) => {
        await tx`DELETE FROM telemetry_1m WHERE bucket >= ${a} AND bucket < ${b}`;
        await tx`DELETE FROM telemetry_1h WHERE bucket >= ${a} AND bucket < ${b}`;
        await tx.unsafe(
          `INSERT INTO telemetry_1m (device_id, metric, bucket, tags_key, min, max, sum, count, last_time, last_value)
           SELECT device_id, metric, date_bin('1 minute', time, ${EPOCH}), tags_key,
                  min(value), max(value), sum(value), count(*), max(time), (array_agg(value ORDER BY time DESC))[1]
           FROM telemetry WHERE time >= $1 AND time < $2 GROUP BY 1, 2, 3, 4`,
          [a, b],
        );
        await tx.unsafe(
          `INSERT INTO telemetry_1h (device_id, metric, bucket, tags_key, min, max, sum, count, last_time, last_value)
           SELECT device_id, metric, date_bin('1 hour', bucket, ${EPOCH}), tags_key,
                  min(min), max(max), sum(sum), sum(count), max(last_time), (array_agg(last_value ORDER BY last_time DESC))[1]
           FROM telemetry_1m WHERE bucket >= $1 AND bucket < $2 GROUP BY 1, 2, 3, 4`,
          [a, b],
        );
      });
    },
  } satisfies TelemetryRepository & Record<string, unknown>;
  return store;
}
