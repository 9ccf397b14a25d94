import { mkdir } from "node:fs/promises";
import { PGlite } from "@electric-sql/pglite";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";
import postgres from "postgres";
import type { Logger } from "pino";
import { migrate } from "./migrate.js";

/** A postgres.js client; the only way the stores talk SQL. */
export type Sql = postgres.Sql;

export interface DatabaseOptions {
  /** A PostgreSQL URL. If absent, an embedded PGlite in `dataDir` is used. */
  url?: string;
  /** Where the embedded database keeps its files. */
  dataDir: string;
  /** Pool size for postgres.js against a real server (the embedded database always uses one connection). */
  maxConnections: number;
  log: Logger;
}

export interface Database {
  sql: Sql;
  /** The URL clients (and node-pg-migrate) connect to; for the embedded database a loopback port. */
  url: string;
  embedded: boolean;
  close(): Promise<void>;
}

/**
 * Opens the database, applies migrations and returns a postgres.js pool.
 *
 * Embedded mode serves PGlite on a loopback socket, so postgres.js and node-pg-migrate use exactly
 * the code path they use against a real server: one set of queries, one set of migrations.
 */
export async function openDatabase(opts: DatabaseOptions): Promise<Database> {
  if (opts.url) {
    await migrate(opts.url, opts.log);
    const sql = createPool(opts.url, opts.maxConnections);
    return { sql, url: opts.url, embedded: false, close: () => sql.end({ timeout: 5 }) };
  }
  await mkdir(opts.dataDir, { recursive: true });
  const started = Date.now();
  const db = await PGlite.create(opts.dataDir);
  // PGlite has a single backend. Its socket server interleaves protocol messages of concurrent
  // connections, which breaks the extended query protocol ("portal does not exist"), so the pool
  // gets exactly one connection and postgres.js queues queries on it; +1 for node-pg-migrate.
  const server = new PGLiteSocketServer({ db, host: "127.0.0.1", port: 0, maxConnections: 2 });
  await server.start();
  const url = `postgres://postgres@${server.getServerConn()}/postgres?sslmode=disable`;
  opts.log.info({ dataDir: opts.dataDir, url, ms: Date.now() - started }, "embedded database ready");
  await migrate(url, opts.log);
  const sql = createPool(url, 1);
  return {
    sql,
    url,
    embedded: true,
    async close() {
      await sql.end({ timeout: 5 });
      await server.stop();
      // close() checkpoints and flushes the WAL into the data directory.
      await db.close();
    },
  };
}

function createPool(url: string, max: number): Sql {
  return postgres(url, {
    max,
    onnotice: () => {},
  });
}
