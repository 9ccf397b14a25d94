/**
 * bench:footprint — where an embedded Tether's memory goes (issue 24, item 1). Tether (PGlite in
 * its worker thread, the embedded broker, the in-process bus) runs as `node bin/tether.js serve`
 * (the compiled build, as `npm start` and systemd run it; this needs Linux's /proc): its resident
 * set (database thread included) and its main thread's heap (from its metrics endpoint) are read:
 *
 *   0. idle, BENCH_IDLE_S (60) seconds after a first start (a new data directory: initdb);
 *   1. idle, BENCH_IDLE_S seconds after a restart on the same directories (the issue's "warm");
 *   2. after BENCH_DEVICES (1,000) LEDs registered and connected over MQTT (a fleet process);
 *   3. after BENCH_TASKS (10,000) tasks, BENCH_CONCURRENCY (64) at a time, each awaited until the
 *      device finished it (CreateTask with wait_for COMPLETED);
 *   4. after BENCH_SAMPLES (1,000,000) telemetry samples from 100 more devices, 100 per message;
 *   5. idle again, BENCH_IDLE_S seconds later.
 * The peak is the highest resident set sampled each second during a phase. Baseline, in the same
 * run: a bare `node` process that does nothing.
 *
 *   npm run bench:footprint
 *   TETHER_PGLITE_BASELINE_WASM=0 npm run bench:footprint     (PGlite tiered up by V8's optimizing compiler too)
 *   TETHER_PGLITE_SHARED_BUFFERS_MB=128 npm run bench:footprint (PostgreSQL's default page cache)
 *   BENCH_HEAP_SNAPSHOT_DIR=/tmp/snap npm run bench:footprint  (a heap snapshot of the main thread at the end)
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import path from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { Task_State as State } from "../../gen/tether/v1/task_pb.js";
import { CreateTaskRequest_WaitFor as WaitFor, TaskService } from "../../gen/tether/v1/task_service_pb.js";
import { ensureDevPki } from "../../src/pki/dev-pki.js";
import { startDeviceSide } from "./lib/device-side.js";
import { createCleanups, envNumber, freePort, gitDescribe, runBench, writeResults } from "./lib/harness.js";
import { mapLimit, mib, ms, now, sleep, table } from "./lib/stats.js";
import { startPublisherSide } from "./lib/telemetry-publishers.js";
import { fileURLToPath } from "node:url";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";

const env = process.env;
const IDLE_S = envNumber("BENCH_IDLE_S", 60, 0);
const DEVICES = Math.floor(envNumber("BENCH_DEVICES", 1000, 1));
const TASKS = Math.floor(envNumber("BENCH_TASKS", 10_000, 1));
const CONCURRENCY = Math.floor(envNumber("BENCH_CONCURRENCY", 64, 1));
const SAMPLES = Math.floor(envNumber("BENCH_SAMPLES", 1_000_000, 1));
const PUBLISHERS = 100;
const PER_MESSAGE = 100;
/** Aims from issue 24, MiB. */
const AIM = { idle: 200, underLoad: 400 };
const MiB = 1024 * 1024;
/** Tether settings passed through to the server when set. */
const SETTINGS = ["TETHER_PGLITE_SHARED_BUFFERS_MB", "TETHER_PGLITE_BASELINE_WASM"];

interface Reading {
  phase: string;
  rss: number;
  peakRss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  detail: string;
}

const log = (line: string) => console.log(`  ${line}`);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

interface Tether {
  child: ChildProcess;
  apiPort: number;
  mqttPort: number;
  certsDir: string;
  memory(): Promise<{ rss: number; heapUsed: number; heapTotal: number; external: number }>;
  /** Telemetry samples and uplink messages waiting in Tether's queues. */
  backlog(): Promise<number>;
  /** Samples stored, and refused because the queue was full, so far. */
  samples(): Promise<{ stored: number; refused: number }>;
  stop(): Promise<void>;
}

/** `node bin/tether.js serve` on fresh directories; resolves once its API answers Health/Check. */
async function startTether(dir: string): Promise<Tether> {
  const [apiPort, mqttPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
  const certsDir = path.join(dir, "certs");
  const snapshots = env.BENCH_HEAP_SNAPSHOT_DIR;
  const nodeFlags = snapshots ? ["--heapsnapshot-signal=SIGUSR2", `--diagnostic-dir=${snapshots}`] : [];
  const child = spawn(process.execPath, [...nodeFlags, path.join(ROOT, "bin/tether.js"), "serve"], {
    cwd: ROOT,
    stdio: ["ignore", "ignore", "inherit"],
    env: {
      PATH: env.PATH,
      HOME: dir,
      TETHER_DATA_DIR: path.join(dir, "data"),
      TETHER_CERTS_DIR: certsDir,
      TETHER_PORT: String(apiPort),
      TETHER_MQTT_PORT: String(mqttPort),
      TETHER_METRICS_PORT: String(metricsPort),
      TETHER_ADDRESS: `https://localhost:${apiPort}`,
      TETHER_UPLINK_RATE_PER_S: "0",
      TETHER_SHUTDOWN_GRACE_MS: "2000",
      LOG_LEVEL: env.BENCH_TETHER_LOG_LEVEL ?? "warn",
      ...Object.fromEntries(SETTINGS.filter((k) => env[k]).map((k) => [k, env[k]!])),
    },
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const metric = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? Number.NaN);
  const t: Tether = {
    child,
    apiPort,
    mqttPort,
    certsDir,
    async memory() {
      const status = await readFile(`/proc/${child.pid}/status`, "utf8");
      const rss = Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1]) * 1024;
      const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      return {
        rss,
        heapUsed: metric(text, "tether_nodejs_heap_size_used_bytes"),
        heapTotal: metric(text, "tether_nodejs_heap_size_total_bytes"),
        external: metric(text, "tether_nodejs_external_memory_bytes"),
      };
    },
    async backlog() {
      const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      return metric(text, 'tether_queue_depth\\{queue="telemetry"\\}') + (metric(text, 'tether_queue_depth\\{queue="uplink"\\}') || 0);
    },
    async samples() {
      const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      return {
        stored: metric(text, "tether_telemetry_samples_stored_total") || 0,
        refused: metric(text, 'tether_telemetry_samples_rejected_total\\{reason="queue_full"\\}') || 0,
      };
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
  const until = now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`tether serve exited ${child.exitCode}`);
    try {
      const ca = await readFile(path.join(certsDir, "ca.crt"));
      const transport = createGrpcTransport({ baseUrl: `https://localhost:${apiPort}`, nodeOptions: { ca } });
      await createClient(Health, transport).check({ service: "" }, { timeoutMs: 1000 });
      return t;
    } catch (err) {
      if (now() > until) throw err;
      await sleep(100);
    }
  }
}

/** Samples the resident set every second while `fn` runs; the reading after it. */
async function phase(app: Tether, name: string, fn: () => Promise<string>): Promise<Reading> {
  let peak = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      peak = Math.max(peak, (await app.memory()).rss);
      await sleep(1000);
    }
  })();
  const t0 = now();
  let detail: string;
  try {
    detail = await fn();
  } finally {
    sampling = false;
    await sampler;
  }
  const m = await app.memory();
  const r = { phase: name, rss: m.rss, peakRss: Math.max(peak, m.rss), heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, detail };
  log(`${name}: rss ${mib(r.rss)} (peak ${mib(r.peakRss)}), heap ${mib(r.heapUsed)} / ${mib(r.heapTotal)} — ${detail} (${ms(now() - t0)})`);
  return r;
}

/** A bare Node.js process's resident set, MiB: the floor no JavaScript program goes under. */
function bareNodeRss(): number {
  const out = execFileSync(process.execPath, ["-e", "setTimeout(() => console.log(process.memoryUsage().rss), 1000)"], { encoding: "utf8" });
  return Number(out.trim());
}

async function main(): Promise<void> {
  const settings = SETTINGS.filter((k) => env[k]).map((k) => `${k}=${env[k]}`);
  console.log(
    `# Tether footprint benchmark — embedded (PGlite), node ${process.version}, ${cpus().length} CPUs, commit ${gitDescribe()}, ` +
      `load average ${loadavg()
        .map((l) => l.toFixed(1))
        .join(" ")}${settings.length ? `, ${settings.join(" ")}` : ""}`,
  );
  const dir = await mkdtemp(path.join(tmpdir(), "tether-bench-footprint-"));
  const cleanups = createCleanups();
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const readings: Reading[] = [];
  try {
    const bare = bareNodeRss();
    log(`bare node process: rss ${mib(bare)}`);
    const first = await startTether(dir);
    readings.push(
      await phase(first, "idle, first start", async () => {
        await sleep(IDLE_S * 1000);
        return `${IDLE_S} s after a start on new directories`;
      }),
    );
    await first.stop();
    const app = await startTether(dir);
    cleanups.push(() => app.stop());
    readings.push(
      await phase(app, "idle", async () => {
        await sleep(IDLE_S * 1000);
        return `${IDLE_S} s after a restart`;
      }),
    );

    const pki = await ensureDevPki(app.certsDir);
    const baseUrl = `https://localhost:${app.apiPort}`;
    const mqttUrl = `mqtts://127.0.0.1:${app.mqttPort}`;
    const sessions = new Http2SessionManager(baseUrl, {}, { ca: pki.caPem, cert: pki.admin.certPem, key: pki.admin.keyPem });
    cleanups.push(async () => sessions.abort());
    const transport = createGrpcTransport({ baseUrl, sessionManager: sessions });
    const deviceApi = createClient(DeviceService, transport);
    const taskApi = createClient(TaskService, transport);
    const ids = Array.from({ length: DEVICES }, (_, i) => `fp-led-${i + 1}`);
    const devices = startDeviceSide("process");
    cleanups.push(() => devices.stop());

    readings.push(
      await phase(app, "devices", async () => {
        await mapLimit(ids, 32, (deviceId) => deviceApi.createDevice({ deviceId, device: { displayName: deviceId, kind: { case: "led", value: {} } } }));
        const fleet = await devices.startFleet({ url: mqttUrl, certsDir: app.certsDir, count: DEVICES, idPrefix: "fp-led", connectConcurrency: 50 });
        for (let online = 0; online < DEVICES; await sleep(250)) {
          online = (await deviceApi.listDevices({ filter: "online = true", pageSize: 1000 })).devices.length;
        }
        await sleep(5000);
        return `${fleet.connected} LEDs connected, 5 s settled`;
      }),
    );

    readings.push(
      await phase(app, "tasks", async () => {
        let done = 0;
        let failed = 0;
        await mapLimit(
          Array.from({ length: TASKS }, (_, i) => i),
          CONCURRENCY,
          async (i) => {
            const t = await taskApi
              .createTask({
                parent: `devices/${ids[i % DEVICES]}`,
                task: { command: { kind: { case: "led", value: { action: { case: "setBrightness", value: i % 101 } } } } },
                waitFor: WaitFor.COMPLETED,
                waitTimeout: { seconds: 60n },
              })
              .catch(() => undefined);
            if (t?.state === State.SUCCEEDED) done++;
            else failed++;
          },
        );
        return `${done} tasks succeeded, ${failed} not`;
      }),
    );

    const pubs = startPublisherSide();
    cleanups.push(() => pubs.stop());
    readings.push(
      await phase(app, "telemetry", async () => {
        const telIds = Array.from({ length: PUBLISHERS }, (_, i) => `fp-tel-${i + 1}`);
        await mapLimit(telIds, 32, (deviceId) => deviceApi.createDevice({ deviceId, device: { displayName: deviceId, kind: { case: "led", value: {} } } }));
        await pubs.connect({
          group: "tel",
          url: mqttUrl,
          certsDir: app.certsDir,
          ids: telIds,
          identity: "device",
          connectConcurrency: 25,
          timeBaseMs: Date.now() - 86_400_000,
        });
        let samples = 0;
        let failed = 0;
        while (samples < SAMPLES) {
          const r = await pubs.run({ group: "tel", seconds: 5, samplesPerMessage: PER_MESSAGE, metric: "footprint", window: 4, backlog: 0 });
          samples += r.samples;
          failed += r.failed;
          if (r.samples === 0) throw new Error(`no sample accepted: ${r.firstError ?? "?"}`);
        }
        await pubs.close("tel");
        const t0 = now();
        while ((await app.backlog()) > 0) await sleep(250);
        const { stored, refused } = await app.samples();
        return (
          `${samples.toLocaleString("en")} samples published (${PER_MESSAGE} per message, ${failed} failed), ${stored.toLocaleString("en")} stored, ` +
          `${refused.toLocaleString("en")} refused (queue full: no receipt, a real device resends); queues empty ${ms(now() - t0)} after the last`
        );
      }),
    );

    readings.push(
      await phase(app, "idle again", async () => {
        await sleep(IDLE_S * 1000);
        return `${IDLE_S} s later`;
      }),
    );

    console.log();
    console.log(
      table(
        ["phase", "rss", "peak rss", "÷ bare node", "heap used", "heap total", "external"],
        readings.map((r) => [r.phase, mib(r.rss), mib(r.peakRss), (r.rss / bare).toFixed(1), mib(r.heapUsed), mib(r.heapTotal), mib(r.external)]),
      ),
    );
    if (env.BENCH_HEAP_SNAPSHOT_DIR) {
      const dirName = env.BENCH_HEAP_SNAPSHOT_DIR;
      const before = new Set(await readdir(dirName));
      app.child.kill("SIGUSR2");
      // Written synchronously by the server's main thread: done once it answers again.
      for (let n = 0; (await readdir(dirName)).every((f) => before.has(f)) || n < 1; n++) await sleep(1000);
      // The metrics endpoint may reset a connection made while the snapshot was being written.
      for (let n = 0; ; n++) {
        try {
          await app.memory();
          break;
        } catch (err) {
          if (n >= 30) throw err;
          await sleep(1000);
        }
      }
      log(`heap snapshot written to ${dirName}`);
    }
    const idle = readings[1]!;
    // The issue's second aim is RSS under bench:tasks: the fleet connected and tasks running.
    const peakUnderLoad = Math.max(...readings.slice(2, 4).map((r) => r.peakRss));
    console.log();
    console.log(`aim: idle rss after a restart ≤ ${AIM.idle} MiB: ${mib(idle.rss)} — ${idle.rss <= AIM.idle * MiB ? "met" : "MISSED"}`);
    console.log(
      `aim: peak rss with ${DEVICES} devices connected and tasks running ≤ ${AIM.underLoad} MiB: ${mib(peakUnderLoad)} — ${peakUnderLoad <= AIM.underLoad * MiB ? "met" : "MISSED"}`,
    );
    console.log(`(no aim) peak rss while ${SAMPLES.toLocaleString("en")} samples arrive as fast as the publishers send: ${mib(readings[4]!.peakRss)}`);
    await writeResults("footprint", { bareNodeRss: bare, readings, settings, load: loadavg() });
  } finally {
    await cleanups.run();
  }
}

runBench(main);
