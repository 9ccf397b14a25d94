/**
 * bench:startup — how long the CLI and the server take to start (issue 24, item 2), each as the
 * median of a few runs, with its aim and met/MISSED:
 * - `tether --help` (nothing but the CLI's own modules);
 * - `tether devices list` against a running server (median of BENCH_CLI_RUNS, 20 by default);
 * - cold `npm start` → the API answers grpc.health.v1 Check, on a fresh data and certs directory
 *   (PGlite's initdb, the dev PKI, migrations);
 * - warm restart: `npm start` again on the same directories → the API answers; and the same with
 *   `node bin/tether.js serve` (as systemd or a container starts it: no npm, no console check).
 * "Answers" is a Health/Check over gRPC on the API port, polled every 20 ms.
 *
 *   npm run bench:startup
 *   BENCH_ROOT=/path/to/other/checkout npm run bench:startup    (measure another checkout, e.g. before a change)
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import { createCleanups, envNumber, freePort, gitDescribe, runBench, writeResults } from "./lib/harness.js";
import { now, sleep, table } from "./lib/stats.js";

const ROOT = path.resolve(process.env.BENCH_ROOT ?? path.join(path.dirname(fileURLToPath(import.meta.url)), "../.."));
const BIN = path.join(ROOT, "bin/tether.js");
const HELP_RUNS = envNumber("BENCH_HELP_RUNS", 10, 1);
const CLI_RUNS = envNumber("BENCH_CLI_RUNS", 20, 1);
const COLD_RUNS = envNumber("BENCH_COLD_RUNS", 3, 1);
const WARM_RUNS = envNumber("BENCH_WARM_RUNS", 5, 1);
const TIMEOUT_MS = envNumber("BENCH_TIMEOUT_MS", 120_000, 1000);

/** Aims from issue 24, in ms. */
const AIM = { help: 300, cli: 300, cold: 5000, warm: 1000 };

interface Dirs {
  home: string;
  data: string;
  certs: string;
}

async function freshDirs(cleanups: ReturnType<typeof createCleanups>): Promise<Dirs> {
  const home = await mkdtemp(path.join(tmpdir(), "tether-bench-startup-"));
  cleanups.push(() => rm(home, { recursive: true, force: true }));
  return { home, data: path.join(home, "data"), certs: path.join(home, "certs") };
}

function envFor(d: Dirs, ports: { api: number; mqtt: number; metrics: number }): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: d.home,
    TETHER_DATA_DIR: d.data,
    TETHER_CERTS_DIR: d.certs,
    TETHER_PORT: String(ports.api),
    TETHER_MQTT_PORT: String(ports.mqtt),
    TETHER_METRICS_PORT: String(ports.metrics),
    TETHER_ADDRESS: `https://localhost:${ports.api}`,
  };
}

/** A command's wall time from spawn to exit; throws with its stderr when it fails. */
async function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const t0 = now();
  const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (b: Buffer) => void (stderr = (stderr + b.toString()).slice(-2000)));
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  const ms = now() - t0;
  if (code !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${code}: ${stderr}`);
  return ms;
}

/** Whether the API answers a Health/Check (the CA exists once the PKI is made). */
async function answers(d: Dirs, port: number): Promise<boolean> {
  let ca: Buffer;
  try {
    ca = await readFile(path.join(d.certs, "ca.crt"));
  } catch {
    return false;
  }
  const transport = createGrpcTransport({ baseUrl: `https://localhost:${port}`, nodeOptions: { ca } });
  try {
    await createClient(Health, transport).check({ service: "" }, { timeoutMs: 1000 });
    return true;
  } catch {
    return false;
  }
}

interface Server {
  child: ChildProcess;
  /** ms from spawn until the API answered. */
  ms: number;
  stop(): Promise<void>;
}

/** `npm start` (or `tether serve` when `direct`) in its own process group, timed until the API answers. */
async function startServer(d: Dirs, env: NodeJS.ProcessEnv, port: number, direct = false): Promise<Server> {
  const t0 = now();
  const [cmd, args] = direct ? [process.execPath, [BIN, "serve"]] : ["npm", ["start", "--silent"]];
  const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ["ignore", "ignore", "pipe"], detached: true });
  let stderr = "";
  child.stderr!.on("data", (b: Buffer) => void (stderr = (stderr + b.toString()).slice(-4000)));
  let exited: number | null | undefined;
  child.once("exit", (code) => void (exited = code));
  while (!(await answers(d, port))) {
    if (exited !== undefined) throw new Error(`${cmd} exited ${exited} before the API answered: ${stderr}`);
    if (now() - t0 > TIMEOUT_MS) throw new Error(`the API did not answer within ${TIMEOUT_MS} ms: ${stderr}`);
    await sleep(20);
  }
  const ms = now() - t0;
  const pgid = child.pid!;
  return {
    child,
    ms,
    // SIGTERM to the group (npm, its shell, node), then wait until every member is gone.
    async stop() {
      try {
        process.kill(-pgid, "SIGTERM");
      } catch {
        return;
      }
      for (;;) {
        try {
          process.kill(-pgid, 0);
        } catch {
          return;
        }
        await sleep(20);
      }
    },
  };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const fmt = (v: number) => (v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${Math.round(v)} ms`);

async function main(): Promise<void> {
  const cleanups = createCleanups();
  const load = () => loadavg()[0]!.toFixed(2);
  console.log(`startup of ${ROOT} (git ${gitDescribe()}), node ${process.version}, load average ${load()} at the start`);
  const rows: string[][] = [];
  const results: Record<string, unknown> = { root: ROOT, node: process.version, loadStart: loadavg()[0] };
  const report = (what: string, runs: number[], aim: number) => {
    const m = median(runs);
    rows.push([what, String(runs.length), fmt(m), fmt(Math.min(...runs)), fmt(Math.max(...runs)), `≤ ${fmt(aim)}`, m <= aim ? "met" : "MISSED"]);
    results[what] = { medianMs: m, runsMs: runs, aimMs: aim, met: m <= aim };
  };
  try {
    const ports = { api: await freePort(), mqtt: await freePort(), metrics: await freePort() };
    let dirs = await freshDirs(cleanups);

    const help: number[] = [];
    for (let i = 0; i < HELP_RUNS; i++) help.push(await timed(process.execPath, [BIN, "--help"], envFor(dirs, ports)));
    report("tether --help", help, AIM.help);

    const cold: number[] = [];
    for (let i = 0; i < COLD_RUNS; i++) {
      if (i > 0) dirs = await freshDirs(cleanups);
      const s = await startServer(dirs, envFor(dirs, ports), ports.api);
      cold.push(s.ms);
      await s.stop();
    }
    report("cold npm start → API answers", cold, AIM.cold);

    const warm: number[] = [];
    let server: Server | undefined;
    for (let i = 0; i < WARM_RUNS; i++) {
      server = await startServer(dirs, envFor(dirs, ports), ports.api);
      warm.push(server.ms);
      if (i < WARM_RUNS - 1) await server.stop();
    }
    report("warm npm start → API answers", warm, AIM.warm);

    const direct: number[] = [];
    for (let i = 0; i < WARM_RUNS; i++) {
      await server?.stop();
      server = await startServer(dirs, envFor(dirs, ports), ports.api, true);
      direct.push(server.ms);
    }
    report("warm tether serve → API answers", direct, AIM.warm);

    try {
      const cli: number[] = [];
      for (let i = 0; i < CLI_RUNS; i++) cli.push(await timed(process.execPath, [BIN, "devices", "list"], envFor(dirs, ports)));
      report("tether devices list (running server)", cli, AIM.cli);
    } finally {
      await server?.stop();
    }
    console.log(`\n${table(["what", "runs", "median", "min", "max", "aim", ""], rows)}`);
    console.log(`\nload average ${load()} at the end (2 cores)`);
    results.loadEnd = loadavg()[0];
    await writeResults("startup", results);
  } finally {
    await cleanups.run();
  }
}

runBench(main);
