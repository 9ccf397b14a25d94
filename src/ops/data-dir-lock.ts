/**
 * The data directory's lock: one running Tether per embedded database. A second `tether serve` on
 * the same folder stops before it opens or writes anything there (PGlite's files, the CRL) with
 * "Tether is already running (pid N)"; a lock whose process is gone (kill -9, power cut) is taken
 * over, with a log line.
 *
 * A pid file created with O_EXCL semantics, not a library such as proper-lockfile: the refusal
 * must name the holder's pid, which mkdir-style locks do not record, and their staleness is an
 * mtime that the holder refreshes on a timer (a write every few seconds to an SD card) and that a
 * new start must wait out after a crash. Liveness here is checked at once: on Linux the record
 * carries the boot id and the process's start time, so a pid reused after a reboot or by another
 * program does not look like a running Tether; elsewhere `kill(pid, 0)`.
 */
import { link, mkdir, readFile, stat, unlink, writeFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import path from "node:path";
import type { Logger } from "pino";

/** The file, inside the data directory. */
export const LOCK_FILE = "tether.lock";

interface LockRecord {
  pid: number;
  host: string;
  /** Linux: /proc/sys/kernel/random/boot_id; undefined elsewhere. */
  boot?: string;
  /** Linux: the process's start time in clock ticks since boot (/proc/PID/stat, field 22). */
  start?: string;
}

/** Refused: another live Tether holds the lock. */
export class DataDirLockedError extends Error {
  override name = "DataDirLockedError";
  constructor(
    readonly pid: number,
    readonly lockFile: string,
    host?: string,
  ) {
    super(`Tether is already running (pid ${pid}${host ? ` on ${host}` : ""}) on this data directory (${lockFile}): stop it first`);
  }
}

export interface DataDirLock {
  file: string;
  /** Removes the lock if it is still ours (a clean stop). */
  release(): Promise<void>;
}

const readText = (file: string) => {
  try {
    return readFileSync(file, "utf8").trim();
  } catch {
    return undefined;
  }
};

/**
 * Field 22 of /proc/PID/stat (the start time), undefined when the process is gone or a zombie
 * (killed, not yet reaped: it holds nothing). The command name (field 2) may hold spaces and ")".
 */
function startTicks(pid: number): string | undefined {
  const s = readText(`/proc/${pid}/stat`);
  const fields = s?.slice(s.lastIndexOf(")") + 2).split(" ");
  return fields && fields[0] !== "Z" && fields[0] !== "X" ? fields[19] : undefined;
}

function ourRecord(): LockRecord {
  return { pid: process.pid, host: hostname(), boot: readText("/proc/sys/kernel/random/boot_id"), start: startTicks(process.pid) };
}

/** Whether the process that wrote `r` still runs (on this host; another host's lock is assumed live). */
function holderAlive(r: LockRecord, us: LockRecord): boolean {
  if (r.host !== us.host) return true;
  if (r.boot && us.boot) {
    if (r.boot !== us.boot) return false; // written before a reboot
    if (r.start) return startTicks(r.pid) === r.start; // missing: gone; different: the pid was reused
  }
  try {
    process.kill(r.pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM"; // alive, another user's
  }
}

function parse(text: string): LockRecord | undefined {
  try {
    const r = JSON.parse(text) as LockRecord;
    return Number.isInteger(r.pid) && r.pid > 0 ? r : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Creates `file` holding `text`, failing with EEXIST if it exists. Written to a temporary file and
 * hard-linked into place, so nobody ever reads a half-written lock; `wx` where links are refused.
 */
async function createExclusive(file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, text, { mode: 0o600 });
  try {
    await link(tmp, file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EOPNOTSUPP") throw err;
    await writeFile(file, text, { mode: 0o600, flag: "wx" });
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

/**
 * Takes the lock of `dataDir` (creating the folder 0700 if it is missing, nothing else), or throws
 * DataDirLockedError naming the live holder. Call before anything opens or writes the data directory.
 */
export async function lockDataDir(dataDir: string, log: Logger): Promise<DataDirLock> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const file = path.join(path.resolve(dataDir), LOCK_FILE);
  const us = ourRecord();
  // Read before writing: a refused start leaves the folder exactly as it was (not even a temporary file).
  for (let attempt = 0; ; attempt++) {
    const before = await stat(file).catch(() => undefined);
    if (!before) {
      try {
        await createExclusive(file, `${JSON.stringify(us)}\n`);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST" || attempt >= 5) throw err;
        continue; // another start created it first: read theirs
      }
    }
    const held = parse(await readFile(file, "utf8").catch(() => ""));
    if (held && holderAlive(held, us)) throw new DataDirLockedError(held.pid, file, held.host !== us.host ? held.host : undefined);
    if (attempt >= 5) throw new Error(`cannot take the lock ${file}`);
    // Stale (or unreadable: no Tether writes half a lock, see createExclusive). Removed only if it is
    // still the file just read: another start may have taken it over meanwhile.
    const now = await stat(file).catch(() => undefined);
    if (now?.ino !== before.ino) continue;
    await unlink(file).catch(() => undefined);
    log.warn({ lock: file, stalePid: held?.pid }, "took over the data directory's lock: the Tether that held it is no longer running");
  }
  return {
    file,
    async release() {
      const held = parse(await readFile(file, "utf8").catch(() => ""));
      if (held?.pid === us.pid && held.start === us.start) await unlink(file).catch(() => undefined);
    },
  };
}
