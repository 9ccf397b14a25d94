// The embedded database's thread: PGlite (PostgreSQL compiled to WebAssembly) and its socket
// server run here, so executing SQL does not take the main thread's time (it serves the API, the
// broker and the task path) and a second core does the database's work. Plain JavaScript on
// purpose: it starts the same way under tsx, vitest and the compiled build, none of which loads
// TypeScript into a worker. Messages: in {type: "close"}; out {type: "ready"} | {type: "closed"}
// | {type: "error", message}.
import { parentPort, workerData } from "node:worker_threads";
import { PGlite } from "@electric-sql/pglite";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";

const { dataDir, socketPath, maxConnections } = workerData;
const port = parentPort;
let db;
let server;

async function start() {
  db = await PGlite.create(dataDir);
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
