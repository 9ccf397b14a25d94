// The embedded database's thread: PGlite (PostgreSQL compiled to WebAssembly) and its socket
// server run here, so executing SQL does not take the main thread's time (it serves the API, the
// broker and the task path) and a second core does the database's work. Plain JavaScript on
// purpose: it starts the same way under tsx, vitest and the compiled build, none of which loads
// TypeScript into a worker. Messages: in {type: "close"}; out {type: "ready"} | {type: "closed"}
// | {type: "error", message}. workerData: dataDir, sharedBuffers, socketPath, maxConnections.
// Also a process of its own that only creates a data directory (below).
import { parentPort, workerData } from "node:worker_threads";
import { PGlite } from "@electric-sql/pglite";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";

const startParams = (sharedBuffers) => [...PGlite.defaultStartParams, "-c", `shared_buffers=${sharedBuffers}`];

if (parentPort === null) {
  // Run as a process (`node pglite-worker.mjs <dataDir> <sharedBuffers>`): create the data
  // directory (initdb) and exit. PGlite's initdb runs a second WebAssembly PostgreSQL whose heap
  // (hundreds of MiB) a process gives back to the system when it exits, and a thread does not.
  const [dir, buffers] = process.argv.slice(2);
  const db = await PGlite.create(dir, { startParams: startParams(buffers) });
  await db.close();
  process.exit(0);
}

const { dataDir, socketPath, maxConnections, sharedBuffers } = workerData;
const port = parentPort;
let db;
let server;

async function start() {
  db = await PGlite.create(dataDir, { startParams: startParams(sharedBuffers) });
  server = new PGLiteSocketServer({ db, path: socketPath, maxConnections });
  await server.start();
  port.postMessage({ type: "ready" });
}

async function close() {
  try {
    await server?.stop();
    // close() checkpoints and flushes the WAL into the data directory.
    await db?.close();
  } finally {
    port.postMessage({ type: "closed" });
  }
}

port.on("message", (m) => {
  if (m?.type === "close") void close();
});
start().catch((err) => port.postMessage({ type: "error", message: err instanceof Error ? (err.stack ?? err.message) : String(err) }));
