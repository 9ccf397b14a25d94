import type { LoginThrottleRepository, ThrottleCounter, ThrottleCounters, ThrottleScope } from "../core/auth/rate-limit.js";
import type { Sql } from "./database.js";
import { withTransaction } from "./transaction.js";

interface Row {
  scope: ThrottleScope;
  failures: number;
  next_time: Date;
  reset_time: Date;
}

/** How often expired counters are deleted, ms: often enough to stay small, rarely enough to cost nothing. */
const PRUNE_EVERY_MS = 60_000;
/** An address not signed in from for this long is no longer known good (and is forgotten), ms. */
const KNOWN_ADDRESS_TTL_MS = 180 * 86_400_000;

/**
 * LoginThrottleRepository on PostgreSQL/PGlite (table `login_throttle`, migration 13).
 *
 * Why an upsert that changes nothing: `INSERT … ON CONFLICT DO UPDATE` locks the row whether it
 * existed or was just created, so two replicas seeing a name for the first time still queue on
 * the same row (a `SELECT … FOR UPDATE` locks nothing that is absent). Rows are always locked in
 * the same order (address, pair, user), so concurrent steps cannot deadlock; and every step for
 * one user name queues on its `user` row, which also serializes its known-address updates.
 */
export function createLoginThrottleStore(sql: Sql): LoginThrottleRepository {
  let lastPrune = 0;
  return {
    async step(user, address, now, decide) {
      const outcome = await withTransaction(sql, async (tx) => {
        const epoch = new Date(0);
        const rows = await tx<Row[]>`
          INSERT INTO login_throttle AS t (scope, user_name, address, failures, next_time, reset_time)
          VALUES ('address', '', ${address}, 0, ${epoch}, ${epoch}),
                 ('pair', ${user}, ${address}, 0, ${epoch}, ${epoch}),
                 ('user', ${user}, '', 0, ${epoch}, ${epoch})
          ON CONFLICT (scope, user_name, address) DO UPDATE SET failures = t.failures
          RETURNING scope, failures, next_time, reset_time`;
        const current: ThrottleCounters = {};
        for (const r of rows) current[r.scope] = { failures: r.failures, nextTime: r.next_time, resetTime: r.reset_time };
        const knownSince = new Date(now.getTime() - KNOWN_ADDRESS_TTL_MS);
        const [known] = await tx`
          SELECT 1 FROM login_known_addresses WHERE user_name = ${user} AND address = ${address} AND last_login_time > ${knownSince}`;
        const d = decide(current, known !== undefined);
        for (const [scope, c] of Object.entries(d.write ?? {}) as Array<[ThrottleScope, ThrottleCounter | null]>) {
          const key = keyOf(scope, user, address);
          if (c === null) await tx`DELETE FROM login_throttle WHERE scope = ${scope} AND user_name = ${key.user} AND address = ${key.address}`;
          else {
            await tx`
              UPDATE login_throttle SET failures = ${c.failures}, next_time = ${c.nextTime}, reset_time = ${c.resetTime}
              WHERE scope = ${scope} AND user_name = ${key.user} AND address = ${key.address}`;
          }
        }
        if (d.remember) {
          // The user may have been deleted since the password check: then there is nothing to remember.
          await tx`
            INSERT INTO login_known_addresses (user_name, address, last_login_time)
            SELECT name, ${address}, ${now} FROM users WHERE name = ${user}
            ON CONFLICT (user_name, address) DO UPDATE SET last_login_time = EXCLUDED.last_login_time`;
          await tx`DELETE FROM login_known_addresses WHERE user_name = ${user} AND last_login_time <= ${knownSince}`;
        }
        return d.result;
      });
      if (now.getTime() - lastPrune > PRUNE_EVERY_MS) {
        lastPrune = now.getTime();
        // Housekeeping only: a failure here is retried a minute later and must not fail a login.
        // SKIP LOCKED: rows a login holds are left for next time, so the sweep never waits on (or
        // deadlocks with) a login that locked them in its own order.
        await sql`
          DELETE FROM login_throttle WHERE ctid = ANY(ARRAY(
            SELECT ctid FROM login_throttle WHERE reset_time < ${now} FOR UPDATE SKIP LOCKED))`.catch(() => undefined);
      }
      return outcome;
    },
  };
}

function keyOf(scope: ThrottleScope, user: string, address: string): { user: string; address: string } {
  if (scope === "user") return { user, address: "" };
  if (scope === "address") return { user: "", address };
  return { user, address };
}
