import { chmod } from "node:fs/promises";
import { PGlite } from "@electric-sql/pglite";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";
import postgres from "postgres";
import type { Logger } from "pino";
import { ensurePrivateDir, PRIVATE_TREE, tightenTree } from "../ops/file-modes.js";
import { migrate, migrationsPending } from "./migrate.js";
import { privateSocket, SOCKET_PORT } from "./private-socket.js";

/** A postgres.js client; the only way the stores talk SQL. */
export type Sql = postgres.Sql;

export interface DatabaseOptions {
  /** A PostgreSQL URL. If absent, an embedded PGlite in `dataDir` is used. */
  url?: string;
  /** Where the embedded database keeps its files. */
  dataDir: string;
  /** The folder of the embedded database's Unix socket (made 0700). @default a fresh private folder in the temp folder */
  socketDir?: string;
  /** Pool size for postgres.js against a real server (the embedded database always uses one connection). */
  maxConnections: number;
  log: Logger;
}

export interface Database {
  sql: Sql;
  embedded: boolean;
  close(): Promise<void>;
}

/**
 * Opens the database, applies migrations and returns a postgres.js pool.
 *
 * Embedded mode serves PGlite on a Unix socket in a 0700 folder, so postgres.js and node-pg-migrate
 * use exactly the code path they use against a real server (one set of queries, one set of
 * migrations) while no other OS user can connect: PGlite has no authentication, whoever reaches
 * it is superuser. Nothing that locates it is logged as a connection string.
 */
export async function openDatabase(opts: DatabaseOptions): Promise<Database> {
  if (opts.url) {
    await migrate(opts.url, opts.log);
    const sql = postgres(opts.url, { max: opts.maxConnections, onnotice: () => {} });
    return { sql, embedded: false, close: () => sql.end({ timeout: 5 }) };
  }
  await ensurePrivateDir(opts.dataDir);
  const started = Date.now();
  const db = await PGlite.create(opts.dataDir);
  // PGlite writes the files it unpacks 0666 (and its relation cache 0644) whatever the umask:
  // narrow them after it opened, after the migrations and after it closed.
  const tighten = () => tightenTree(opts.dataDir, PRIVATE_TREE);
  const socket = await privateSocket(opts.socketDir);
  let server: PGLiteSocketServer | undefined;
  let sql: Sql | undefined;
  const close = async () => {
    await sql?.end({ timeout: 5 });
    await server?.stop();
    // close() checkpoints and flushes the WAL into the data directory.
    await db.close();
    await socket.dispose();
    await tighten();
  };
  try {
    await tighten();
    // PGlite has a single backend. Its socket server interleaves protocol messages of concurrent
    // connections, which breaks the extended query protocol ("portal does not exist"), so the pool
    // gets exactly one connection and postgres.js queues queries on it; +1 for node-pg-migrate.
    server = new PGLiteSocketServer({ db, path: socket.path, maxConnections: 2 });
    await server.start();
    await chmod(socket.path, 0o600); // the folder already keeps others out; the socket too
    opts.log.info({ dataDir: opts.dataDir, socketDir: socket.dir, ms: Date.now() - started }, "embedded database ready");
    // One process owns the embedded database (the data directory's lock), so reading what was applied
    // and then migrating cannot race another replica: a restart with nothing new skips node-pg-migrate.
    const applied = await db.query<{ name: string }>("select name from pgmigrations").then(
      (r) => r.rows.map((row) => row.name),
      () => [], // a new database: no table yet
    );
    if (migrationsPending(applied)) {
      await migrate({ host: socket.dir, port: SOCKET_PORT, user: "postgres", database: "postgres" }, opts.log);
      await tighten();
    }
    sql = postgres({ path: socket.path, user: "postgres", database: "postgres", max: 1, onnotice: () => {} });
    return { sql, embedded: true, close };
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
}
