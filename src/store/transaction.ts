import type postgres from "postgres";
import type { PendingAudit } from "../core/ports/audit.js";
import { auditSink, auditWith, inTransaction, openAuditQueue, pendingAudit, releaseAudit, takeAuditQueue } from "./audit-context.js";
import { insertAuditRows, okRow } from "./audit-store.js";
import type { Sql } from "./database.js";

/** The client a transaction body gets: every query on it runs inside the transaction. */
export type TxSql = postgres.ReservedSql;

/**
 * Runs `fn` in a transaction on a reserved connection.
 *
 * Why not `sql.begin`: in postgres.js 3.4.9, when BEGIN is the query that fills a connection's
 * pipeline, `sql.begin` sends BEGIN without reserving the connection (porsager/postgres#1189,
 * fix in PR #1218, unreleased). The transaction then stays open while unrelated queries run in it,
 * and the caller crashes with "Cannot read properties of undefined". `reserve()` waits, in the
 * pool's FIFO order, for an idle connection and keeps it exclusively, so that race cannot happen.
 * Never await a query on the pool (rather than `tx`) inside `fn`: with one connection it would
 * wait for itself. A reserved connection that dies is left to the pool to reconnect: that needs
 * the postgres.js patch in `patches/` (porsager/postgres#1208, unreleased upstream).
 *
 * Audit events queued on the transaction (`auditWith`/`auditCall` in audit-context.ts) are
 * inserted, in one statement, just before COMMIT: they commit with the change or not at all.
 */
export async function withTransaction<T>(sql: Sql, fn: (tx: TxSql) => Promise<T>): Promise<T> {
  const tx = await sql.reserve();
  openAuditQueue(tx);
  let events: PendingAudit[] = [];
  try {
    await tx`BEGIN`;
    try {
      const result = await fn(tx);
      events = takeAuditQueue(tx);
      const records = await insertAuditRows(tx, events.map(okRow));
      await tx`COMMIT`;
      for (const p of events) p.written = true;
      if (records.length > 0) auditSink(sql)?.(records);
      return result;
    } catch (err) {
      releaseAudit(events.length > 0 ? events : takeAuditQueue(tx));
      // A lost connection has already ended the transaction on the server.
      if (!isConnectionLost(err)) await tx`ROLLBACK`.catch(() => {});
      throw err;
    }
  } finally {
    takeAuditQueue(tx);
    tx.release();
  }
}

/**
 * A change a mutating call makes: in a transaction carrying the call's audit event when there is
 * one (and `changed` says the statement did change something: a miss answers NOT_FOUND or
 * ABORTED and is audited as that), else as it always ran, on the pool, with no extra statement.
 * `resource` names what was changed when the store knows better than the request (a new id).
 */
export async function auditedChange<T>(
  sql: Sql,
  fn: (q: Sql) => Promise<T>,
  opts: { changed?: (result: T) => boolean; resource?: (result: T) => string | undefined } = {},
): Promise<T> {
  const p = pendingAudit();
  if (!p) return fn(sql);
  const changed = opts.changed ?? ((r: T) => r !== undefined && r !== null && r !== false);
  const run = async (tx: Sql) => {
    const result = await fn(tx);
    if (changed(result)) {
      const resource = opts.resource?.(result);
      if (resource) p.resource = resource;
      auditWith(tx, [p]);
    }
    return result;
  };
  // A store built on a transaction's connection (provisioning inserts its device so) joins it.
  return inTransaction(sql) ? run(sql) : withTransaction(sql, run);
}

/** postgres.js connection-level failures (as opposed to an error the server returned). */
export function isConnectionLost(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^(CONNECTION_(CLOSED|DESTROYED|ENDED)|CONNECT_TIMEOUT|ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|57P01|57P02)$/.test(code);
}
