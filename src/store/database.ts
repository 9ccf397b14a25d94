import { chmod } from "node:fs/promises";
import { existsSync } from "node:fs";
import path from "node:path";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";
import { setFlagsFromString } from "node:v8";
import { Worker } from "node:worker_threads";
import postgres from "postgres";
import type { Logger } from "pino";
import { ensurePrivateDir, PRIVATE_TREE, tightenTree } from "../ops/file-modes.js";
import { migrate, migrationsPending } from "./migrate.js";
import { privateSocket, SOCKET_PORT } from "./private-socket.js";

const execFileAsync = promisify(execFile);

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
  /**
   * Count the statements sent (benchmarks). Off in service: it turns on postgres.js's `debug`
   * hook, which also makes its errors carry their query parameters as enumerable fields, and a
   * logged error must never carry a parameter (a password hash, a token).
   */
  countStatements?: boolean;
  /**
   * The embedded database's `shared_buffers` (PostgreSQL's page cache, in PGlite's WebAssembly
   * heap, resident once touched). PostgreSQL's default is 128MB; on a small board that is most of
   * the idle footprint, and the OS page cache behind PGlite's files keeps what does not fit.
   * @default "16MB"
   */
  sharedBuffers?: string;
  /**
   * Compile the embedded database's WebAssembly with V8's baseline compiler only (Liftoff),
   * without tiering hot functions up to the optimizing one (TurboFan): about 80 MiB less
   * resident memory (bench:footprint), and no optimizing compiles competing for a small board's
   * cores. Short OLTP statements, most of Tether's workload, ran as fast or faster in our
   * measurements; bulk inserts (a telemetry batch), aggregates and sorts over many rows are
   * slower (1.3–1.7×). A process-wide V8 flag, set before
   * the database thread compiles PGlite; nothing else in Tether runs WebAssembly on a hot path.
   * @default false (Tether's configuration turns it on: TETHER_PGLITE_BASELINE_WASM)
   */
  baselineWasm?: boolean;
  log: Logger;
}

export interface Database {
  sql: Sql;
  embedded: boolean;
  /** SQL statements sent so far on the pool (BEGIN and COMMIT count), when `countStatements`; else 0. */
  statements(): number;
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
  // postgres.js calls `debug` once per statement it sends: a counter costs one increment.
  let sent = 0;
  const debug = opts.countStatements ? () => void sent++ : undefined;
  const statements = () => sent;
  if (opts.url) {
    await migrate(opts.url, opts.log);
    const sql = postgres(opts.url, { max: opts.maxConnections, onnotice: () => {}, debug });
    return { sql, embedded: false, statements, close: () => sql.end({ timeout: 5 }) };
  }
  await ensurePrivateDir(opts.dataDir);
  const started = Date.now();
  // PGlite writes the files it unpacks 0666 (and its relation cache 0644) whatever the umask:
  // narrow them after it opened, after the migrations and after it closed.
  const tighten = () => tightenTree(opts.dataDir, PRIVATE_TREE);
  const socket = await privateSocket(opts.socketDir);
  let thread: DatabaseThread | undefined;
  let sql: Sql | undefined;
  const close = async () => {
    await sql?.end({ timeout: 5 });
    await thread?.close();
    await socket.dispose();
    await tighten();
  };
  try {
    // PGlite and its socket server run in a worker thread (pglite-worker.mjs): the database's
    // work is off the main thread. PGlite has a single backend. Its socket server interleaves
    // protocol messages of concurrent connections, which breaks the extended query protocol
    // ("portal does not exist"), so the pool gets exactly one connection and postgres.js queues
    // queries on it; +1 for node-pg-migrate.
    if (opts.baselineWasm) setFlagsFromString("--liftoff-only");
    const settings = { sharedBuffers: opts.sharedBuffers ?? "16MB" };
    // A new data directory is made (initdb) by a short-lived process: PGlite's initdb runs a
    // second WebAssembly PostgreSQL, and the hundreds of MiB it touches stay resident in the
    // process that ran it (measured: 830 MiB idle after a first start with initdb in this process,
    // 220 MiB with it in its own).
    if (!existsSync(path.join(opts.dataDir, "PG_VERSION"))) await initDataDir(opts.dataDir, settings.sharedBuffers);
    thread = await startDatabaseThread({ dataDir: opts.dataDir, ...settings, socketPath: socket.path, maxConnections: 2 }, opts.log);
    await tighten();
    await chmod(socket.path, 0o600); // the folder already keeps others out; the socket too
    opts.log.info({ dataDir: opts.dataDir, socketDir: socket.dir, ms: Date.now() - started }, "embedded database ready");
    sql = postgres({ path: socket.path, user: "postgres", database: "postgres", max: 1, onnotice: () => {}, debug });
    // One process owns the embedded database (the data directory's lock), so reading what was applied
    // and then migrating cannot race another replica: a restart with nothing new skips node-pg-migrate.
    // (The pool is idle while node-pg-migrate runs on its own connection: PGlite's socket server
    // must never see two connections' messages interleaved.)
    const applied = await sql<{ name: string }[]>`select name from pgmigrations`.then(
      (rows) => rows.map((row) => row.name),
      () => [], // a new database: no table yet
    );
    if (migrationsPending(applied)) {
      await migrate({ host: socket.dir, port: SOCKET_PORT, user: "postgres", database: "postgres" }, opts.log);
      await tighten();
    }
    return { sql, embedded: true, statements, close };
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
}

interface DatabaseThread {
  /** Stops the socket server and closes PGlite (flushing it), then ends the thread. */
  close(): Promise<void>;
}

/** Creates the embedded database's data directory in a process of its own (see pglite-worker.mjs). */
async function initDataDir(dataDir: string, sharedBuffers: string): Promise<void> {
  try {
    await execFileAsync(process.execPath, [fileURLToPath(workerFile()), dataDir, sharedBuffers], { maxBuffer: 1 << 20 });
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? "")
      .trim()
      .slice(-2000);
    throw new Error(`creating the embedded database in ${dataDir} failed${stderr ? `: ${stderr}` : ""}`, { cause: err });
  }
}

/** Starts the embedded database's worker thread; resolves once its socket accepts connections. */
async function startDatabaseThread(
  data: { dataDir: string; sharedBuffers: string; socketPath: string; maxConnections: number },
  log: Logger,
): Promise<DatabaseThread> {
  const worker = new Worker(workerFile(), { workerData: data });
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    worker.once("exit", (code) => {
      exited = true;
      if (code !== 0) log.error({ code }, "the embedded database thread exited");
      resolve();
    }),
  );
  worker.on("error", (err) => log.error({ err }, "the embedded database thread failed"));
  const next = (type: string) =>
    new Promise<void>((resolve, reject) => {
      const onMessage = (m: { type: string; message?: string }) => {
        if (m.type === type) resolve();
        else if (m.type === "error") reject(new Error(`embedded database: ${m.message}`));
        else return;
        worker.off("message", onMessage);
      };
      worker.on("message", onMessage);
      void exit.then(() => reject(new Error("the embedded database thread exited")));
    });
  try {
    await next("ready");
  } catch (err) {
    await worker.terminate();
    throw err;
  }
  return {
    async close() {
      if (exited) return;
      const closed = next("closed");
      worker.postMessage({ type: "close" });
      await closed.catch((err: unknown) => log.error({ err }, "closing the embedded database failed"));
      await worker.terminate();
    },
  };
}

/**
 * The worker's file: next to this module in a checkout (tsx, vitest), at the root of dist/ in the
 * compiled build, where this module is inside a bundle chunk (scripts/build-dist.js copies it there).
 */
function workerFile(): URL {
  for (const rel of ["./pglite-worker.mjs", "../pglite-worker.mjs"]) {
    const url = new URL(rel, import.meta.url);
    if (existsSync(url)) return url;
  }
  throw new Error(`pglite-worker.mjs not found near ${import.meta.url}: run npm run build`);
}
