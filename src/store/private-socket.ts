import { chmod, lstat, mkdir, mkdtemp, rm, unlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

/**
 * Where the embedded database listens: a Unix socket in a folder only Tether's OS user can enter,
 * so no other local user can reach the password-less PGlite superuser (a loopback TCP port is
 * open to every local process). The file is named as PostgreSQL names it (`.s.PGSQL.5432`),
 * because `pg` (node-pg-migrate) derives the socket from a host folder and a port.
 */
export interface PrivateSocket {
  /** The folder (0700) holding the socket; `pg`'s `host`. */
  dir: string;
  /** The socket file; postgres.js's `path`. */
  path: string;
  /** Removes what {@link privateSocket} created outside the data folder. */
  dispose(): Promise<void>;
}

export const SOCKET_PORT = 5432;
const SOCKET_NAME = `.s.PGSQL.${SOCKET_PORT}`;
/** `sun_path` holds 108 bytes on Linux, one of them the terminating NUL (104 on macOS and BSDs). */
const MAX_SOCKET_PATH_BYTES = process.platform === "linux" ? 107 : 103;

const fits = (dir: string) => Buffer.byteLength(path.join(dir, SOCKET_NAME)) <= MAX_SOCKET_PATH_BYTES;

/**
 * A private socket folder: `preferred` (inside the data folder) when given and the socket path fits
 * the kernel's limit, else a fresh `mkdtemp` folder (created 0700 under a name nobody could
 * pre-create) in the temp folder, or in `/tmp` when even that path is too long.
 */
export async function privateSocket(preferred: string | undefined): Promise<PrivateSocket> {
  if (preferred !== undefined && fits(preferred)) {
    await mkdir(preferred, { recursive: true, mode: 0o700 });
    // A link or someone else's folder here would put the socket where others can reach it.
    const st = await lstat(preferred);
    if (!st.isDirectory() || (process.getuid && st.uid !== process.getuid())) {
      throw new Error(`${preferred} must be a folder owned by Tether's user (it holds the embedded database's socket)`);
    }
    if ((st.mode & 0o077) !== 0) await chmod(preferred, st.mode & 0o700);
    const file = path.join(preferred, SOCKET_NAME);
    // A socket left by a crash would make listen() fail with EADDRINUSE.
    await unlink(file).catch(() => undefined);
    return { dir: preferred, path: file, dispose: async () => {} };
  }
  for (const base of [tmpdir(), "/tmp"]) {
    if (!fits(path.join(base, "tether-pg-XXXXXX"))) continue;
    const dir = await mkdtemp(path.join(base, "tether-pg-"));
    return { dir, path: path.join(dir, SOCKET_NAME), dispose: () => rm(dir, { recursive: true, force: true }) };
  }
  throw new Error(`no folder short enough for the embedded database's Unix socket (${preferred ?? tmpdir()}): set TMPDIR to a short path`);
}
