import { execFile, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const BIN = path.resolve(import.meta.dirname, "../../bin/tether.js");
// Nothing listens here: a Tether that got past the refusal would fail on the database, differently.
const DATABASE_URL = "postgres://tether@127.0.0.1:1/tether";
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "tether-prod-start-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** `tether serve` as an operator starts it, with only `env` (no inherited TETHER_* settings). */
function serveEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: dir,
    TETHER_PORT: "0",
    TETHER_METRICS_PORT: "0",
    TETHER_MQTT_PORT: "0",
    TETHER_CERTS_DIR: "certs",
    TETHER_DATA_DIR: "data",
    ...env,
  };
}

async function serveFails(env: Record<string, string>): Promise<{ code: number; stderr: string }> {
  try {
    await run(process.execPath, [BIN, "serve"], { env: serveEnv(env), cwd: dir, timeout: 60_000 });
  } catch (err) {
    const e = err as { code?: number; stderr?: string; killed?: boolean };
    if (e.killed) throw new Error("tether serve did not exit on its own");
    return { code: e.code ?? -1, stderr: e.stderr ?? "" };
  }
  throw new Error("tether serve exited 0");
}

describe("tether serve in production mode", () => {
  it("exits non-zero without TETHER_SIGNING_KEY_SECRET and with the placeholder passwords of deploy/", async () => {
    const { code, stderr } = await serveFails({ DATABASE_URL, PGPASSWORD: "change-me", AMQP_URL: "amqp://tether:CHANGE_ME@127.0.0.1:1/" });
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/refusing to start in production mode/);
    expect(stderr).toMatch(/TETHER_SIGNING_KEY_SECRET is not set/);
    expect(stderr).toMatch(/PGPASSWORD is a placeholder/);
    expect(stderr).toMatch(/AMQP_URL carries a placeholder password/);
    expect(stderr).not.toMatch(/change-me|CHANGE_ME/);
  }, 90_000);

  it("exits non-zero with a placeholder TETHER_SIGNING_KEY_SECRET", async () => {
    const { code, stderr } = await serveFails({ DATABASE_URL, TETHER_SIGNING_KEY_SECRET: "change-me" });
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/TETHER_SIGNING_KEY_SECRET is a placeholder/);
  }, 90_000);

  it("goes on with TETHER_ALLOW_INSECURE=1, warning about each problem", async () => {
    const child = spawn(process.execPath, [BIN, "serve"], {
      env: serveEnv({ DATABASE_URL, PGPASSWORD: "change-me", TETHER_ALLOW_INSECURE: "1" }),
      cwd: dir,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    try {
      const problems: string[] = [];
      await new Promise<void>((resolve, reject) => {
        createInterface({ input: child.stdout }).on("line", (line) => {
          const entry = JSON.parse(line) as { msg?: string; problem?: string };
          if (entry.problem) problems.push(entry.problem);
          if (problems.length === 2) resolve();
        });
        void exited.then((c) => reject(new Error(`exited (${c}) before warning twice`)));
      });
      expect(problems).toEqual([expect.stringMatching(/TETHER_SIGNING_KEY_SECRET is not set/), "PGPASSWORD is a placeholder"]);
    } finally {
      child.kill("SIGKILL");
      await exited;
    }
  }, 90_000);
});
