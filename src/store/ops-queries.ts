import type { Sql } from "./database.js";

/** The cheap queries behind health probes and metric gauges (callers bound how long they wait). */
export interface OpsQueries {
  /** `SELECT 1` on a pooled connection: the database health probe. */
  ping(): Promise<boolean>;
  /** Task counts by state (one GROUP BY), cached for `cacheMs` so frequent scrapes cost nothing. */
  tasksByState(): Promise<Record<string, number>>;
  devicesOnline(): Promise<number>;
}

export function createOpsQueries(sql: Sql, opts: { cacheMs?: number } = {}): OpsQueries {
  const cacheMs = opts.cacheMs ?? 5000;
  const cached = <T>(load: () => Promise<T>) => {
    let value: { at: number; v: Promise<T> } | undefined;
    return () => {
      if (!value || Date.now() - value.at > cacheMs) {
        const v = load();
        value = { at: Date.now(), v };
        v.catch(() => (value = undefined)); // a failure is not cached
      }
      return value.v;
    };
  };
  return {
    ping: async () => (await sql`SELECT 1 AS ok`)[0]?.ok === 1,
    tasksByState: cached(async () => {
      const rows = await sql<Array<{ state: string; n: string }>>`SELECT state, count(*) AS n FROM tasks GROUP BY state`;
      return Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]));
    }),
    devicesOnline: cached(async () => Number((await sql<Array<{ n: string }>>`SELECT count(*) AS n FROM devices WHERE online`)[0]?.n ?? 0)),
  };
}
