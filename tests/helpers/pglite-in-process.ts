/**
 * PGlite for fast tests: migrated from the shipped SQL files and reached by postgres.js through an
 * in-memory stream pair instead of a socket, so core services run on the production SQL with no
 * network at all (tests/unit opens no sockets). The stores cannot tell the difference: the bytes are
 * the PostgreSQL wire protocol either way, framed here and executed by PGlite's `execProtocolRaw`.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { Duplex } from "node:stream";
import { PGlite } from "@electric-sql/pglite";
import postgres from "postgres";
import { MIGRATIONS_DIR } from "../../src/store/migrate.js";
import type { Sql } from "../../src/store/database.js";

/** An in-memory PGlite with every migration applied (the Up parts of migrations/*.sql, in order). */
export async function migratedPglite(): Promise<PGlite> {
  const db = await PGlite.create();
  for (const file of readdirSync(MIGRATIONS_DIR)
    .filter((f) => f.endsWith(".sql"))
    .sort()) {
    const text = readFileSync(path.join(MIGRATIONS_DIR, file), "utf8");
    await db.exec(text.split(/^-- Down Migration/m)[0]!);
  }
  return db;
}

/** Two connected in-memory duplex streams: what one writes, the other reads. */
function streamPair(): [Duplex, Duplex] {
  let a: Duplex;
  let b: Duplex;
  const make = (peer: () => Duplex) =>
    new Duplex({
      read() {},
      write(chunk, _encoding, done) {
        peer().push(chunk);
        done();
      },
      final(done) {
        peer().push(null);
        done();
      },
    });
  a = make(() => b);
  b = make(() => a);
  return [a, b];
}

const SSL_REQUEST = 80877103;

/**
 * Serves the wire protocol on `server`: splits the byte stream into messages (the startup message
 * has no type byte), answers an SSL request with "N", and runs each message through PGlite in order.
 */
function serve(db: PGlite, server: Duplex, client: Duplex): void {
  let buffer = Buffer.alloc(0);
  let started = false;
  let chain = Promise.resolve();
  server.on("data", (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk]);
    for (;;) {
      const length = started ? (buffer.length >= 5 ? 1 + buffer.readInt32BE(1) : 0) : buffer.length >= 4 ? buffer.readInt32BE(0) : 0;
      if (length === 0 || buffer.length < length) return;
      const message = buffer.subarray(0, length);
      buffer = buffer.subarray(length);
      if (!started && length === 8 && message.readInt32BE(4) === SSL_REQUEST) {
        server.write(Buffer.from("N"));
        continue;
      }
      started = true;
      // Terminate: the client waits for its socket to close (postgres.js `end()`).
      if (message[0] === 0x58) {
        void chain.then(() => (client.destroy(), server.destroy()));
        return;
      }
      const bytes = new Uint8Array(message);
      chain = chain.then(
        async () => {
          await db.execProtocolRawStream(bytes, { syncToFs: false, onRawData: (reply) => void server.write(Buffer.from(reply)) });
        },
        () => undefined,
      );
    }
  });
}

/** A postgres.js client on `db` with no socket: one connection, as the embedded database uses. */
export function inProcessSql(db: PGlite): Sql {
  // `socket` is a documented postgres.js option that its type definitions leave out.
  const options = {
    max: 1,
    onnotice: () => {},
    socket: () => {
      const [client, server] = streamPair();
      serve(db, server, client);
      // postgres.js reads net.Socket's readyState to decide whether to send Terminate and wait for close.
      Object.defineProperty(client, "readyState", { get: () => (client.destroyed ? "closed" : "open") });
      return client as never;
    },
  };
  return postgres(options as postgres.Options<{}>);
}
