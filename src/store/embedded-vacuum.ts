import type { Sql } from "./database.js";

/**
 * Autovacuum for the embedded database. PGlite runs PostgreSQL as one backend with no background
 * workers, so nothing ever vacuums or analyzes: every task changes state four or five times and
 * every webhook delivery twice, each change leaving a dead row version behind, and without this
 * the tables and their indexes grow for as long as Tether runs while the planner never gets
 * statistics. Each step takes the one table furthest past PostgreSQL's default autovacuum
 * thresholds (dead rows > 50 + 20 % of live rows; rows inserted since the last vacuum > 1,000 +
 * 20 %, for the visibility map of insert-only tables such as telemetry; changes since the last
 * analyze > 50 + 10 %), so one step blocks the single connection only as long as one table takes,
 * and frequent steps keep each one short.
 */
export function createEmbeddedVacuum(sql: Sql) {
  /** The table most in need, and whether it needs a vacuum (else an analyze). */
  async function due(): Promise<{ name: string; vacuum: boolean } | undefined> {
    // A backend flushes its table counters when it goes idle, at most once a second, and PGlite's
    // idle timer that would flush the rest never fires: ask for the flush, then read.
    await sql`SELECT pg_stat_force_next_flush()`;
    const rows = await sql<{ name: string; vacuum: boolean }[]>`
      SELECT name, dead_due OR inserted_due AS vacuum FROM (
        SELECT format('%I.%I', schemaname, relname) AS name, n_dead_tup, n_mod_since_analyze,
               n_dead_tup > 50 + 0.2 * n_live_tup AS dead_due,
               n_ins_since_vacuum > 1000 + 0.2 * n_live_tup AS inserted_due,
               n_mod_since_analyze > 50 + 0.1 * n_live_tup AS analyze_due
        FROM pg_stat_user_tables) t
      WHERE dead_due OR inserted_due OR analyze_due
      ORDER BY dead_due DESC, n_dead_tup DESC, n_mod_since_analyze DESC
      LIMIT 1`;
    return rows[0];
  }
  return {
    /** Vacuums (with analyze) or analyzes the table most in need; what it did, or undefined. */
    async step(): Promise<{ table: string; vacuumed: boolean } | undefined> {
      const t = await due();
      if (!t) return undefined;
      // The name comes from the catalog, quoted by format('%I'): nothing a client supplied.
      await sql.unsafe(t.vacuum ? `VACUUM (ANALYZE) ${t.name}` : `ANALYZE ${t.name}`);
      return { table: t.name, vacuumed: t.vacuum };
    },
  };
}
