import type { Sql } from "./database.js";

const DAY = 86_400_000;

/** The three partitioned telemetry tables: raw samples and their minute rollups by UTC day, hour rollups by UTC month. */
export type TelemetryTable = "telemetry" | "telemetry_1m" | "telemetry_1h";

interface Period {
  /** Start of the period holding `t` (UTC). */
  start(t: number): number;
  /** Start of the following period. */
  next(start: number): number;
  /** Suffix of the partition's name. */
  suffix(start: number): string;
  /** Inverse of `suffix`: the period's start, or undefined if the name is not one of ours. */
  parse(suffix: string): number | undefined;
}

const iso = (t: number) => new Date(t).toISOString();

const daily: Period = {
  start: (t) => t - (((t % DAY) + DAY) % DAY),
  next: (s) => s + DAY,
  suffix: (s) => iso(s).slice(0, 10).replace(/-/g, ""),
  parse(x) {
    const m = /^(\d{4})(\d{2})(\d{2})$/.exec(x);
    return m ? Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) : undefined;
  },
};

// Hour rollups are small (24 rows per series and day): a month per partition keeps a year's
// retention at 13 tables instead of 366.
const monthly: Period = {
  start: (t) => {
    const d = new Date(t);
    return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  },
  next: (s) => {
    const d = new Date(s);
    return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
  },
  suffix: (s) => iso(s).slice(0, 7).replace(/-/g, ""),
  parse(x) {
    const m = /^(\d{4})(\d{2})$/.exec(x);
    return m ? Date.UTC(Number(m[1]), Number(m[2]) - 1, 1) : undefined;
  },
};

const PERIODS: Record<TelemetryTable, Period> = { telemetry: daily, telemetry_1m: daily, telemetry_1h: monthly };
const TABLES = Object.keys(PERIODS) as TelemetryTable[];

/**
 * Creates the range partitions the writer needs (remembered per process, so the hot path asks the
 * database only for a period it has not seen) and drops whole partitions for retention.
 */
export function createTelemetryPartitions(sql: Sql) {
  const known = new Set<string>();

  async function ensure(table: TelemetryTable, t: number): Promise<void> {
    const p = PERIODS[table];
    const start = p.start(t);
    const name = `${table}_${p.suffix(start)}`;
    if (known.has(name)) return;
    try {
      await sql.unsafe(`CREATE TABLE IF NOT EXISTS ${name} PARTITION OF ${table} FOR VALUES FROM ('${iso(start)}') TO ('${iso(p.next(start))}')`);
    } catch (err) {
      // Another replica created it at the same moment.
      if ((err as { code?: string }).code !== "42P07") throw err;
    }
    known.add(name);
  }

  async function list(table: TelemetryTable): Promise<string[]> {
    const rows = await sql`
      SELECT c.relname AS name FROM pg_inherits i
      JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
      WHERE p.relname = ${table} ORDER BY c.relname`;
    return rows.map((r) => String(r.name));
  }

  return {
    list,

    /** Partitions of every table for the samples at these times (raw and minute: the day; hour: the month). */
    async forTimes(times: Iterable<number>): Promise<void> {
      const days = new Set<number>();
      for (const t of times) days.add(daily.start(t));
      for (const day of days) for (const table of TABLES) await ensure(table, day);
    },

    /** Partitions of every table covering [from, to). */
    async range(from: number, to: number): Promise<void> {
      for (let day = daily.start(from); day < to; day += DAY) for (const table of TABLES) await ensure(table, day);
    },

    /** Drops the partitions of `table` whose whole period ended at or before `before`; returns their names. */
    async dropBefore(table: TelemetryTable, before: number): Promise<string[]> {
      const p = PERIODS[table];
      const dropped: string[] = [];
      for (const name of await list(table)) {
        const start = p.parse(name.slice(table.length + 1));
        if (start === undefined || p.next(start) > before) continue;
        await sql.unsafe(`DROP TABLE IF EXISTS ${name}`);
        known.delete(name);
        dropped.push(name);
      }
      return dropped;
    },
  };
}
