import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { createInterface } from "node:readline";
import { productionTestEnv } from "./stack.js";

const BIN = path.resolve(import.meta.dirname, "../../bin/tether.js");

/** One `tether serve` child process, as an operator runs it. */
export interface Replica {
  name: string;
  pid: number;
  apiPort: number;
  baseUrl: string;
  opsUrl: string;
  /** Every JSON log line so far. */
  logs: Array<Record<string, unknown>>;
  /** Everything written to stderr so far (crash traces). */
  stderr(): string;
  /** kill -9: no shutdown code runs. */
  crash(): Promise<void>;
  /** SIGTERM, then waits for the exit (graceful shutdown). */
  stop(): Promise<void>;
  exited: Promise<number | null>;
}

/**
 * Starts `bin/tether.js serve` with `env` on ephemeral ports and resolves when it logs
 * "tether ready", reading the bound ports from that JSON line.
 */
export async function startReplica(name: string, env: Record<string, string>, timeoutMs = 60_000): Promise<Replica> {
  const child: ChildProcess = spawn(process.execPath, [BIN, "serve"], {
    env: {
      ...process.env,
      TETHER_PORT: "0",
      TETHER_METRICS_PORT: "0",
      TETHER_HOST: "127.0.0.1",
      LOG_LEVEL: "info",
      TETHER_SHUTDOWN_GRACE_MS: "2000",
      ...productionTestEnv(env),
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: Array<Record<string, unknown>> = [];
  let stderr = "";
  child.stderr?.on("data", (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on("line", (line) => {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      logs.push(entry);
      if (entry.msg === "tether ready") resolve(entry);
    });
    void exited.then((code) =>
      reject(new Error(`replica ${name} exited (${code}) before it was ready:\n${stderr}\n${logs.map((l) => JSON.stringify(l)).join("\n")}`)),
    );
    setTimeout(() => reject(new Error(`replica ${name} not ready within ${timeoutMs} ms:\n${stderr}`)), timeoutMs).unref();
  });
  let line: Record<string, unknown>;
  try {
    line = await ready;
  } catch (err) {
    child.kill("SIGKILL");
    throw err;
  }
  const apiPort = Number(new URL(String(line.api)).port);
  return {
    name,
    pid: child.pid!,
    apiPort,
    baseUrl: `https://localhost:${apiPort}`,
    opsUrl: new URL(String(line.metrics)).origin,
    logs,
    stderr: () => stderr,
    exited,
    async crash() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** Reads one series' value from a Prometheus text exposition (summing all its label sets). */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  let found = false;
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const l = m[2] ?? "";
    if (!Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`))) continue;
    total += Number(m[3]);
    found = true;
  }
  return found ? total : NaN;
}
