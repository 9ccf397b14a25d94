import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import path from "node:path";
import type { Logger } from "pino";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { DataDirLockedError, LOCK_FILE, lockDataDir } from "../../src/ops/data-dir-lock.js";

let dir: string;
const warn = vi.fn();
const log = { warn } as unknown as Logger;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "tether-lock-unit-"));
  warn.mockClear();
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A pid that surely ran and has exited. */
function deadPid(): number {
  return spawnSync(process.execPath, ["-e", "0"]).pid!;
}

describe("lockDataDir", () => {
  it("creates the folder and a 0600 lock naming this process; a second lock is refused with the holder's pid", async () => {
    const lock = await lockDataDir(path.join(dir, "data"), log);
    expect((await stat(lock.file)).mode & 0o777).toBe(0o600);
    expect((await stat(path.join(dir, "data"))).mode & 0o777).toBe(0o700);
    expect(JSON.parse(await readFile(lock.file, "utf8"))).toMatchObject({ pid: process.pid, host: hostname() });
    const refused = lockDataDir(path.join(dir, "data"), log);
    await expect(refused).rejects.toBeInstanceOf(DataDirLockedError);
    await expect(refused).rejects.toThrow(`Tether is already running (pid ${process.pid})`);
    await lock.release();
    expect(existsSync(lock.file)).toBe(false);
  });

  it("takes over a lock whose process is gone, with a warning naming it", async () => {
    const pid = deadPid();
    await writeFile(path.join(dir, LOCK_FILE), `${JSON.stringify({ pid, host: hostname() })}\n`);
    const lock = await lockDataDir(dir, log);
    expect(JSON.parse(await readFile(lock.file, "utf8")).pid).toBe(process.pid);
    expect(warn).toHaveBeenCalledWith(expect.objectContaining({ stalePid: pid }), expect.stringMatching(/took over/));
  });

  it.runIf(existsSync("/proc/self/stat"))("takes over a lock whose pid now belongs to another process (a reboot, or reuse)", async () => {
    const ours = JSON.parse(await readFile((await lockDataDir(dir, log)).file, "utf8"));
    // This process, but started at another time: the pid was reused.
    await writeFile(path.join(dir, LOCK_FILE), JSON.stringify({ ...ours, start: "1" }));
    await expect(lockDataDir(dir, log)).resolves.toMatchObject({ file: path.join(dir, LOCK_FILE) });
    // And a lock written before the last boot.
    await writeFile(path.join(dir, LOCK_FILE), JSON.stringify({ ...ours, boot: "another-boot" }));
    await expect(lockDataDir(dir, log)).resolves.toBeDefined();
    expect(warn).toHaveBeenCalledTimes(2);
  });

  it("release leaves a lock that is no longer ours", async () => {
    const lock = await lockDataDir(dir, log);
    const other = JSON.stringify({ pid: process.pid + 1, host: hostname() });
    await writeFile(lock.file, other);
    await lock.release();
    expect(await readFile(lock.file, "utf8")).toBe(other);
  });

  it("treats an unreadable lock as stale", async () => {
    await writeFile(path.join(dir, LOCK_FILE), "not json");
    await expect(lockDataDir(dir, log)).resolves.toBeDefined();
  });
});
