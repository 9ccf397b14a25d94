import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, lstatSync, readdirSync, readFileSync, statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const BIN = path.resolve(import.meta.dirname, "../../bin/tether.js");
let dir: string;
const started: ChildProcess[] = [];
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "tether-lock-"));
});
afterAll(async () => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await rm(dir, { recursive: true, force: true });
});

const env = (): NodeJS.ProcessEnv => ({
  PATH: process.env.PATH,
  HOME: dir,
  TETHER_PORT: "0",
  TETHER_MQTT_PORT: "0",
  TETHER_METRICS_PORT: "0",
  TETHER_DATA_DIR: "data",
  TETHER_CERTS_DIR: "certs",
});

interface Serving {
  child: ChildProcess;
  /** Every log line so far (JSON: not a terminal). */
  lines: Array<{ msg?: string; stalePid?: number }>;
  exited: Promise<number | null>;
}

/** `tether serve` in `dir`, resolved once it logs "tether ready". */
async function serve(): Promise<Serving> {
  const child = spawn(process.execPath, [BIN, "serve"], { cwd: dir, env: env(), stdio: ["ignore", "pipe", "pipe"] });
  started.push(child);
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  const lines: Serving["lines"] = [];
  let stderr = "";
  child.stderr!.on("data", (b: Buffer) => void (stderr += b.toString()));
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const entry = JSON.parse(line) as Serving["lines"][number];
      lines.push(entry);
      if (entry.msg === "tether ready") resolve();
    });
    void exited.then((code) => reject(new Error(`tether serve exited (${code}) before it was ready: ${stderr}`)));
  });
  return { child, lines, exited };
}

/** Every entry below `root`: its mode, size, mtime and (files) content hash. */
function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const visit = (p: string) => {
    const st = lstatSync(p);
    const hash = st.isFile() ? createHash("sha256").update(readFileSync(p)).digest("hex") : "";
    out[path.relative(dir, p)] = `${st.mode.toString(8)} ${st.size} ${st.mtimeMs} ${hash}`;
    if (st.isDirectory()) for (const e of readdirSync(p)) visit(path.join(p, e));
  };
  visit(root);
  return out;
}

describe("the data directory's lock", () => {
  it("refuses a second tether serve on the same data directory, which exits non-zero naming the pid and changes no file", async () => {
    const first = await serve();
    const lock = path.join(dir, "data/tether.lock");
    expect(statSync(lock).mode & 0o777).toBe(0o600);
    // Paused, the first Tether writes nothing meanwhile (timers, the database), yet its pid is alive.
    first.child.kill("SIGSTOP");
    let second: { code: number | null; stderr: string };
    const before = { data: snapshot(path.join(dir, "data")), certs: snapshot(path.join(dir, "certs")) };
    try {
      second = await new Promise((resolve) => {
        execFile(process.execPath, [BIN, "serve"], { cwd: dir, env: env(), timeout: 60_000 }, (err, _stdout, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stderr }),
        );
      });
      expect({ data: snapshot(path.join(dir, "data")), certs: snapshot(path.join(dir, "certs")) }).toEqual(before);
    } finally {
      first.child.kill("SIGCONT");
    }
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(`Tether is already running (pid ${first.child.pid})`);

    // A clean stop releases the lock.
    first.child.kill("SIGTERM");
    expect(await first.exited).toBe(0);
    expect(existsSync(lock)).toBe(false);
  }, 120_000);

  it("takes over the lock of a Tether killed with SIGKILL, saying so in the log", async () => {
    const killed = await serve();
    killed.child.kill("SIGKILL");
    await killed.exited;
    expect(existsSync(path.join(dir, "data/tether.lock"))).toBe(true);

    const next = await serve();
    expect(next.lines.find((l) => l.stalePid !== undefined)).toMatchObject({ stalePid: killed.child.pid, msg: expect.stringMatching(/took over/) });
    expect(JSON.parse(readFileSync(path.join(dir, "data/tether.lock"), "utf8"))).toMatchObject({ pid: next.child.pid });
    next.child.kill("SIGTERM");
    expect(await next.exited).toBe(0);
  }, 120_000);
});
