/**
 * What another local user finds on a machine running the embedded Tether: no database endpoint it
 * can open (PGlite has no authentication: whoever reaches it is superuser), no credential in the
 * start log, and no file it can read or change in the data and PKI folders, whatever the umask.
 */
import { execFile } from "node:child_process";
import { chmod, lstat, readdir, readFile, readlink } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { captureLogger } from "../helpers/auth.js";
import { startTestStack, type TestStack } from "../helpers/stack.js";

const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;
/** `nobody`: another OS user, as a local attacker would be. */
const OTHER_UID = 65534;

let s: TestStack;
const capture = captureLogger();
let umask: number;

beforeAll(async () => {
  // The widest umask there is: every mode below must come from Tether itself.
  umask = process.umask(0);
  s = await startTestStack({}, { log: capture.log });
});

afterAll(async () => {
  await s?.cleanup();
  process.umask(umask);
});

/** TCP ports and Unix socket paths this process listens on, read from /proc (Linux). */
async function listeners(pid: number): Promise<{ ports: number[]; paths: string[] }> {
  const fdDir = `/proc/${pid}/fd`;
  const inodes = new Set<string>();
  for (const fd of await readdir(fdDir)) {
    const target = await readlink(path.join(fdDir, fd)).catch(() => "");
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m) inodes.add(m[1]!);
  }
  const ports: number[] = [];
  for (const table of ["tcp", "tcp6"]) {
    const text = await readFile(`/proc/${pid}/net/${table}`, "utf8").catch(() => "");
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address is f[1] (hex addr:port), st is f[3] (0A = LISTEN), inode is f[9].
      if (f.length > 9 && f[3] === "0A" && inodes.has(f[9]!)) ports.push(parseInt(f[1]!.split(":")[1]!, 16));
    }
  }
  const paths: string[] = [];
  for (const line of (await readFile(`/proc/${pid}/net/unix`, "utf8")).split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    // Flags 00010000 = __SO_ACCEPTCON: a listening socket; f[6] is the inode, f[7] the path.
    if (f.length > 7 && f[3] === "00010000" && inodes.has(f[6]!) && f[7]!.startsWith("/")) paths.push(f[7]!);
  }
  return { ports, paths };
}

/**
 * In another process (as another OS user when the test runs as root): connect to `endpoint` and
 * send a PostgreSQL StartupMessage as the superuser, without a password. "open" means the server
 * answered AuthenticationOk: that process could now run any SQL.
 */
async function probePostgres(endpoint: number | string): Promise<string> {
  const script = `
    const net = require("node:net");
    const target = process.argv[1];
    const s = /^\\d+$/.test(target) ? net.connect(Number(target), "127.0.0.1") : net.connect(target);
    const done = (r) => { console.log(r); s.destroy(); process.exit(0); };
    setTimeout(() => done("timeout"), 3000);
    s.on("error", (e) => done("error " + e.code));
    s.on("close", () => done("closed"));
    s.on("connect", () => {
      const params = Buffer.from("user\\0postgres\\0database\\0postgres\\0\\0");
      const head = Buffer.alloc(8);
      head.writeInt32BE(8 + params.length, 0);
      head.writeInt32BE(196608, 4);
      s.write(Buffer.concat([head, params]));
    });
    s.on("data", (b) => done(b[0] === 0x52 && b.readInt32BE(5) === 0 ? "open" : "refused"));`;
  const { stdout } = await run(process.execPath, ["-e", script, String(endpoint)], {
    cwd: "/",
    timeout: 20_000,
    ...(isRoot ? { uid: OTHER_UID, gid: OTHER_UID } : {}),
  });
  return stdout.trim();
}

interface Entry {
  path: string;
  mode: number;
  dir: boolean;
}

async function walk(root: string): Promise<Entry[]> {
  const out: Entry[] = [];
  const visit = async (p: string) => {
    const st = await lstat(p);
    if (st.isSymbolicLink()) return;
    out.push({ path: p, mode: st.mode & 0o7777, dir: st.isDirectory() });
    if (st.isDirectory()) for (const name of await readdir(p)) await visit(path.join(p, name));
  };
  await visit(root);
  return out;
}

const octal = (m: number) => m.toString(8).padStart(4, "0");

/** Entries with permissions beyond what they may have: 0700/0600 in the data folder, keys 0600 and public PKI files 0644. */
async function tooOpen(): Promise<string[]> {
  const bad: string[] = [];
  for (const e of await walk(path.join(s.dir, "data"))) if (e.mode & 0o077) bad.push(`${octal(e.mode)} ${e.path}`);
  for (const e of await walk(s.certsDir)) {
    const max = e.dir ? 0o755 : e.path.endsWith(".key") ? 0o600 : 0o644;
    if (e.mode & ~max) bad.push(`${octal(e.mode)} ${e.path}`);
  }
  return bad;
}

describe("local access to an embedded Tether", () => {
  it("gives another local process no database it can open: no TCP port, and a socket other users cannot reach", async () => {
    const { ports, paths } = await listeners(process.pid);
    expect(ports).toContain(s.app.apiPort); // the scan sees this process's listeners
    const probes = await Promise.all([...ports, ...paths].map(async (e) => `${e} ${await probePostgres(e)}`));
    expect(probes.filter((p) => p.endsWith(" open"))).toEqual([]);
    if (isRoot) {
      // As another user, the database socket cannot even be connected to.
      for (const p of paths) expect(await probePostgres(p)).toBe("error EACCES");
    }
    for (const p of paths) expect((await lstat(path.dirname(p))).mode & 0o077).toBe(0);
  });

  it("logs no credential at start: no database URL, no password, not the signing-key secret", async () => {
    const text = capture.text();
    expect(text).toContain("tether ready");
    expect(text).not.toMatch(/postgres(ql)?:\/\//);
    expect(text).not.toMatch(/:\/\/[^/\s"@]*:[^/\s"@]+@/); // user:password@ in any URL
    const secret = (await readFile(path.join(s.dir, "data", "signing-key.secret"), "utf8")).trim();
    expect(text).not.toContain(secret);
  });

  it("creates every file 0600 and folder 0700 with umask 000 (public PKI files 0644), running and after stop", async () => {
    expect(await tooOpen()).toEqual([]);
    expect((await lstat(path.join(s.certsDir, "ca.key"))).mode & 0o777).toBe(0o600);
    expect((await lstat(path.join(s.dir, "data"))).mode & 0o777).toBe(0o700);
    await s.app.stop(); // PGlite writes its files again at close
    expect(await tooOpen()).toEqual([]);
    await s.restart();
  });

  it("tightens an existing world-writable installation at start, with one log line counting the entries", async () => {
    await s.app.stop();
    // What an earlier version left behind: 969 of 1,108 database files were world-writable.
    const entries = [...(await walk(path.join(s.dir, "data"))), ...(await walk(s.certsDir))];
    for (const e of entries) await chmod(e.path, e.dir ? 0o777 : 0o666);
    expect((await tooOpen()).length).toBe(entries.length);
    const before = capture.lines().length;
    await s.restart();
    expect(await tooOpen()).toEqual([]);
    const lines = capture
      .lines()
      .slice(before)
      .filter((l) => String(l.msg).startsWith("tightened file modes"));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ tightened: entries.length });
  });
});
