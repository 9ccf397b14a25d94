import type postgres from "postgres";
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
 */
export async function withTransaction<T>(sql: Sql, fn: (tx: TxSql) => Promise<T>): Promise<T> {
  const tx = await sql.reserve();
  try {
    await tx`BEGIN`;
    try {
      const result = await fn(tx);
      await tx`COMMIT`;
      return result;
    } catch (err) {
      // A lost connection has already ended the transaction on the server.
      if (!isConnectionLost(err)) await tx`ROLLBACK`.catch(() => {});
      throw err;
    }
  } finally {
    tx.release();
  }
}

/** postgres.js connection-level failures (as opposed to an error the server returned). */
export function isConnectionLost(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^(CONNECTION_(CLOSED|DESTROYED|ENDED)|CONNECT_TIMEOUT|ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|57P01|57P02)$/.test(code);
}
