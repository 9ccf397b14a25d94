/**
 * Tasks benchmark: how fast does a task travel app → Tether → device → Tether → app?
 *
 *   npm run bench:tasks                       # 1,000 LEDs, 10 s per phase (~2 min in all)
 *   BENCH_DEVICES=100 BENCH_SECONDS=3 npm run bench:tasks
 *
 * An embedded Tether runs in a child process (ephemeral ports, temp dir, PGlite, silent logs), so
 * its CPU and memory are measured apart from the callers'. The simulated LED fleet (Tether's
 * device SDK) runs in another child process, connected over mTLS MQTT to the embedded broker.
 * Apps are connect-node gRPC clients in this process, over mTLS with the admin certificate.
 *
 * Phases: 0) one task at a time (the unloaded round trip); 1) paced load (open loop, default
 * 500 tasks/s, round-robin over the devices); 2) closed loop at a fixed concurrency (the maximum
 * sustained rate). "Round trip" = CreateTask call start → the caller sees SUCCEEDED, measured two
 * ways: on one WatchTasks("devices/-") stream (primary) and with CreateTask(wait_for = COMPLETED).
 * Baselines on the same broker and server transport: a raw MQTT QoS 1 echo and a bare echo RPC.
 * Prints figures and writes tests/bench/results/tasks-latest.json; never fails on timing (exit
 * code 0 unless the benchmark itself breaks).
 *
 * Environment (defaults in brackets):
 *   BENCH_DEVICES [1000]            BENCH_SECONDS per phase [10]     BENCH_RATE phase 1 [500]
 *   BENCH_CONCURRENCY phase 2 [128] BENCH_GRACE_SECONDS [5]          BENCH_DRAIN_SECONDS [30]
 *   BENCH_ECHO_DEVICES [min(100, devices)]                           BENCH_INFLIGHT baselines [100]
 *   BENCH_VARIANTS [watch,completed] BENCH_PHASES [0,1,2]            BENCH_BASELINES [1]; 0 skips
 *   BENCH_DEVICE_THREAD [process] | worker | main                           BENCH_TETHER_LOG_LEVEL [silent]
 *   BENCH_TETHER_CPU_PROF_DIR  write a V8 CPU profile of Tether's process there (phase windows in the results)
 *   BENCH_TCP_NODELAY=1  what-if: TCP_NODELAY on every TLS socket (see lib/nodelay.ts)
 *   BENCH_DATABASE_URL   run Tether against this (empty) PostgreSQL database instead of embedded PGlite
 */
import { mkdtemp, rm } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import path from "node:path";
import { type Client, createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { Task_State as State } from "../../gen/tether/v1/task_pb.js";
import { CreateTaskRequest_WaitFor as WaitFor, TaskService } from "../../gen/tether/v1/task_service_pb.js";
import { TEST_SIGNING_KEY_SECRET } from "../helpers/stack.js";
import { ensureDevPki, issueServiceCertificate } from "../../src/pki/dev-pki.js";
import { type BaselineResult, mqttRoundTrip, rpcEcho } from "./lib/baselines.js";
import { type DeviceSide, type DeviceSideMode, startDeviceSide } from "./lib/device-side.js";
import { forceTcpNoDelay } from "./lib/nodelay.js";
import { cpuMeter, type LatencySummary, mapLimit, mib, ms, now, rate, sleep, summarize, table } from "./lib/stats.js";
import { TaskOutcomes } from "./lib/task-outcomes.js";
import { eluBetween, startTetherProcess, type TetherSide } from "./lib/tether-side.js";
import { createCleanups, envNumber, gitDescribe, recordProcessErrors, runBench, writeResults } from "./lib/harness.js";

// ---------------------------------------------------------------------------------------------
// Configuration

const env = process.env;
const DEVICES = Math.floor(envNumber("BENCH_DEVICES", 1000, 1));
const SECONDS = envNumber("BENCH_SECONDS", 10, 0.5);
const RATE = envNumber("BENCH_RATE", 500, 1);
const CONCURRENCY = Math.floor(envNumber("BENCH_CONCURRENCY", 128, 1));
const GRACE_S = envNumber("BENCH_GRACE_SECONDS", 5, 0);
const ECHO_DEVICES = Math.floor(envNumber("BENCH_ECHO_DEVICES", Math.min(100, DEVICES), 1));
const INFLIGHT = Math.floor(envNumber("BENCH_INFLIGHT", 100, 1));
const VARIANTS = (env.BENCH_VARIANTS ?? "watch,completed").split(",").map((v) => v.trim()) as Variant[];
const PHASES = new Set((env.BENCH_PHASES ?? "0,1,2").split(",").map((p) => p.trim()));
const BASELINES = env.BENCH_BASELINES !== "0";
const SOLO_SECONDS = Math.min(3, SECONDS);
const DEVICE_THREAD: DeviceSideMode = env.BENCH_DEVICE_THREAD === "main" ? "main" : env.BENCH_DEVICE_THREAD === "worker" ? "worker" : "process";
const TCP_NODELAY = env.BENCH_TCP_NODELAY === "1";
/** Longest wait, between phases, for the tasks a phase left open to end. */
const DRAIN_TIMEOUT_MS = envNumber("BENCH_DRAIN_SECONDS", 30, 0) * 1000;
/** In-flight cap for the paced phase: a safety net so an overloaded server cannot grow it without bound. */
const PACED_CAP = 2000;
const BASELINE_SECONDS = { single: Math.min(3, SECONDS), loaded: Math.min(5, SECONDS) };
const P99_AIM_MS = 25;
const THROUGHPUT_AIM = 0.5;
const ID_PREFIX = "bench-led";
const ECHO_PREFIX = "tether-bench/v1";

const processErrors = recordProcessErrors();

type Variant = "watch" | "completed";
const VARIANT_LABEL: Record<Variant, string> = {
  watch: "WatchTasks stream",
  completed: "wait_for=COMPLETED",
};
for (const v of VARIANTS) if (!(v in VARIANT_LABEL)) throw new Error(`BENCH_VARIANTS: unknown variant ${v} (watch, completed)`);

const log = (msg: string) => console.log(`[${((now() - T0) / 1000).toFixed(1).padStart(5)} s] ${msg}`);
const T0 = now();

// ---------------------------------------------------------------------------------------------
// One task round trip

interface TaskRun {
  start: number;
  end?: number;
  state?: State;
  name?: string;
  error?: string;
}

interface Ctx {
  app: TetherSide;
  tasks: Client<typeof TaskService>;
  outcomes: TaskOutcomes;
  ids: string[];
}

let nextDevice = 0;
let created = 0;
const deviceFor = (ctx: Ctx) => ctx.ids[nextDevice++ % ctx.ids.length]!;

/** Creates one `setBrightness` task and resolves when the caller has seen it end (or at `deadline`). */
async function runTask(ctx: Ctx, variant: Variant, deviceId: string, deadline: number): Promise<TaskRun> {
  const start = now();
  const run: TaskRun = { start };
  const task = { command: { kind: { case: "led" as const, value: { action: { case: "setBrightness" as const, value: created++ % 101 } } } } };
  const budget = Math.max(1, deadline - start);
  try {
    if (variant === "completed") {
      const t = await ctx.tasks.createTask(
        { parent: `devices/${deviceId}`, task, waitFor: WaitFor.COMPLETED, waitTimeout: { seconds: BigInt(Math.max(1, Math.ceil(budget / 1000))) } },
        { timeoutMs: Math.ceil(budget) + 2000 },
      );
      run.end = now();
      run.name = t.name;
      run.state = t.state;
    } else {
      const t = await ctx.tasks.createTask({ parent: `devices/${deviceId}`, task }, { timeoutMs: Math.ceil(budget) + 2000 });
      run.name = t.name;
      const o = await ctx.outcomes.wait(t.name, deadline - now());
      if (o) {
        run.end = o.at;
        run.state = o.state;
      }
    }
  } catch (err) {
    run.error = err instanceof Error ? err.message : String(err);
  }
  return run;
}

// ---------------------------------------------------------------------------------------------
// Phases

interface PhaseResult {
  phase: string;
  variant: Variant;
  measuredBy: string;
  seconds: number;
  /** Tasks created (CreateTask issued). */
  issued: number;
  /** CreateTask calls started per second over the issuing window. */
  createdPerSecond: number;
  /** Tasks the caller saw SUCCEEDED inside the phase window, per second. */
  succeededPerSecond: number;
  succeeded: number;
  /** Issued tasks the caller did not see SUCCEEDED by the end of the phase plus the grace period. */
  notSucceeded: number;
  notSucceededDetail: Record<string, number>;
  latency: LatencySummary;
  target?: { rate: number; inflightCap: number; scheduleLagP99Ms: number; scheduleLagMaxMs: number; maxInflight: number };
  concurrency?: number;
  mainThreadElu: number;
  deviceThreadElu: number;
  processCpuMsPerTask: number;
  /** CPU of the benchmark's own process (the gRPC callers and their watch stream) per task: not Tether's. */
  clientCpuMsPerTask: number;
  /** CPU of the device process per task (BENCH_DEVICE_THREAD=process), not part of the process figure. */
  deviceCpuMsPerTask?: number;
  /** SQL statements Tether sent per task issued in the phase (BEGIN and COMMIT count; watchers' and sweeps' too). */
  statementsPerTask: number;
  /** The phase window on the monotonic clock (µs), the clock of `node --cpu-prof` profiles. */
  window: { fromUs: number; toUs: number };
  firstError?: string;
}

const monoUs = () => Number(process.hrtime.bigint() / 1000n);

async function classify(ctx: Ctx, runs: TaskRun[], ok: (r: TaskRun) => boolean): Promise<{ detail: Record<string, number>; firstError?: string }> {
  const detail: Record<string, number> = {};
  const add = (k: string) => (detail[k] = (detail[k] ?? 0) + 1);
  let firstError: string | undefined;
  const unknown: TaskRun[] = [];
  for (const r of runs) {
    if (ok(r)) continue;
    if (r.error !== undefined) {
      add("CreateTask error");
      firstError ??= r.error;
    } else if (r.state !== undefined && r.state !== State.SUCCEEDED) add(`ended ${State[r.state]}`);
    else if (r.state === State.SUCCEEDED) add("SUCCEEDED after the grace period");
    else unknown.push(r);
  }
  // Not seen in time: ask where the task is now (a watch gap looks the same as a slow task).
  await mapLimit(unknown.slice(0, 500), 16, async (r) => {
    try {
      const t = await ctx.tasks.getTask({ name: r.name! });
      add(`not seen in time, now ${State[t.state]}`);
    } catch {
      add("not seen in time, GetTask failed");
    }
  });
  if (unknown.length > 500) detail["not seen in time, not inspected"] = unknown.length - 500;
  return { detail, firstError };
}

async function meters(ctx: Ctx, devices: DeviceSide) {
  const clientCpu = cpuMeter();
  const dev0 = await devices.mark();
  const t0 = await ctx.app.usage();
  return async () => {
    const dev = await devices.usage(dev0);
    const t1 = await ctx.app.usage();
    return {
      mainThreadElu: eluBetween(t1.elu, t0.elu).utilization,
      deviceThreadElu: dev.elu.utilization,
      deviceCpuMs: dev.cpuMs,
      cpuMs: (t1.cpu.user - t0.cpu.user + t1.cpu.system - t0.cpu.system) / 1000,
      clientCpuMs: clientCpu(),
      statements: t1.statements - t0.statements,
    };
  };
}

/** Open loop: task i starts at t0 + i / rate, whatever the earlier ones are doing. */
async function pacedPhase(ctx: Ctx, devices: DeviceSide, variant: Variant): Promise<PhaseResult> {
  const total = Math.max(1, Math.round(RATE * SECONDS));
  const measure = await meters(ctx, devices);
  const fromUs = monoUs();
  const t0 = now();
  const windowEnd = t0 + SECONDS * 1000;
  const deadline = windowEnd + GRACE_S * 1000;
  const runs: TaskRun[] = [];
  const running: Promise<void>[] = [];
  const lags: number[] = [];
  let issued = 0;
  let inflight = 0;
  let maxInflight = 0;
  while (issued < total && now() < deadline) {
    const due = Math.min(total, Math.floor(((now() - t0) * RATE) / 1000) + 1);
    while (issued < due && inflight < PACED_CAP) {
      const i = issued++;
      lags.push(now() - (t0 + (i * 1000) / RATE));
      maxInflight = Math.max(maxInflight, ++inflight);
      running.push(
        runTask(ctx, variant, deviceFor(ctx), deadline).then((r) => {
          runs.push(r);
          inflight--;
        }),
      );
    }
    await sleep(1);
  }
  const issueSeconds = Math.max(SECONDS, (now() - t0) / 1000);
  await Promise.all(running);
  const toUs = monoUs();
  const m = await measure();
  const ok = (r: TaskRun) => r.state === State.SUCCEEDED && r.end !== undefined && r.end <= deadline;
  const good = runs.filter(ok);
  const inWindow = good.filter((r) => r.end! <= windowEnd).length;
  const { detail, firstError } = await classify(ctx, runs, ok);
  const lag = summarize(lags);
  return {
    phase: `phase 1: paced ${RATE}/s`,
    variant,
    measuredBy: VARIANT_LABEL[variant],
    seconds: SECONDS,
    issued,
    createdPerSecond: issued / issueSeconds,
    succeededPerSecond: inWindow / SECONDS,
    succeeded: good.length,
    notSucceeded: runs.length - good.length,
    notSucceededDetail: detail,
    latency: summarize(good.map((r) => r.end! - r.start)),
    target: { rate: RATE, inflightCap: PACED_CAP, scheduleLagP99Ms: lag.p99, scheduleLagMaxMs: lag.max, maxInflight },
    mainThreadElu: m.mainThreadElu,
    deviceThreadElu: m.deviceThreadElu,
    processCpuMsPerTask: m.cpuMs / Math.max(1, good.length),
    clientCpuMsPerTask: m.clientCpuMs / Math.max(1, good.length),
    deviceCpuMsPerTask: m.deviceCpuMs === undefined ? undefined : m.deviceCpuMs / Math.max(1, good.length),
    statementsPerTask: m.statements / Math.max(1, runs.length),
    window: { fromUs, toUs },
    firstError,
  };
}

/** Closed loop: `concurrency` callers, each creating its next task as soon as it saw the last one end. */
async function closedPhase(ctx: Ctx, devices: DeviceSide, variant: Variant, phase: string, concurrency: number, seconds: number): Promise<PhaseResult> {
  const measure = await meters(ctx, devices);
  const fromUs = monoUs();
  const t0 = now();
  const windowEnd = t0 + seconds * 1000;
  const deadline = windowEnd + GRACE_S * 1000;
  const runs: TaskRun[] = [];
  const caller = async () => {
    while (now() < windowEnd) runs.push(await runTask(ctx, variant, deviceFor(ctx), deadline));
  };
  await Promise.all(Array.from({ length: concurrency }, caller));
  const toUs = monoUs();
  const m = await measure();
  const ok = (r: TaskRun) => r.state === State.SUCCEEDED && r.end !== undefined && r.end <= deadline;
  const good = runs.filter(ok);
  const inWindow = good.filter((r) => r.end! <= windowEnd);
  const { detail, firstError } = await classify(ctx, runs, ok);
  return {
    phase,
    variant,
    measuredBy: VARIANT_LABEL[variant],
    seconds,
    issued: runs.length,
    createdPerSecond: runs.length / seconds,
    succeededPerSecond: inWindow.length / seconds,
    succeeded: good.length,
    notSucceeded: runs.length - good.length,
    notSucceededDetail: detail,
    latency: summarize(inWindow.map((r) => r.end! - r.start)),
    concurrency,
    mainThreadElu: m.mainThreadElu,
    deviceThreadElu: m.deviceThreadElu,
    processCpuMsPerTask: m.cpuMs / Math.max(1, good.length),
    clientCpuMsPerTask: m.clientCpuMs / Math.max(1, good.length),
    deviceCpuMsPerTask: m.deviceCpuMs === undefined ? undefined : m.deviceCpuMs / Math.max(1, good.length),
    statementsPerTask: m.statements / Math.max(1, runs.length),
    window: { fromUs, toUs },
    firstError,
  };
}

function printPhase(p: PhaseResult): void {
  const l = p.latency;
  console.log(`\n## ${p.phase} — round trip seen via ${p.measuredBy}, ${p.seconds} s`);
  if (p.target) {
    console.log(
      `   offered ${rate(p.target.rate)}: created ${rate(p.createdPerSecond)} (${p.issued} tasks; schedule lag p99 ${ms(p.target.scheduleLagP99Ms)}, max ${ms(p.target.scheduleLagMaxMs)}; max in flight ${p.target.maxInflight})`,
    );
  } else {
    console.log(`   ${p.concurrency} callers: created ${rate(p.createdPerSecond)} (${p.issued} tasks)`);
  }
  console.log(`   SUCCEEDED seen by the caller: ${rate(p.succeededPerSecond)} inside the window; ${p.succeeded} in all`);
  console.log(`   round trip: p50 ${ms(l.p50)}  p90 ${ms(l.p90)}  p99 ${ms(l.p99)}  max ${ms(l.max)}  (n=${l.count})`);
  const detail = Object.entries(p.notSucceededDetail)
    .map(([k, v]) => `${k}: ${v}`)
    .join(", ");
  console.log(`   not succeeded within the phase + ${GRACE_S} s grace: ${p.notSucceeded}${detail ? ` (${detail})` : ""}`);
  if (p.firstError) console.log(`   first error: ${p.firstError}`);
  console.log(
    `   Tether's main thread busy ${(p.mainThreadElu * 100).toFixed(0)} %, device ${DEVICE_THREAD === "process" ? "process" : "thread"} busy ${(p.deviceThreadElu * 100).toFixed(0)} %, Tether process CPU ${p.processCpuMsPerTask.toFixed(2)} ms per task (apart: callers ${p.clientCpuMsPerTask.toFixed(2)} ms${p.deviceCpuMsPerTask === undefined ? "" : `, devices ${p.deviceCpuMsPerTask.toFixed(2)} ms`})`,
  );
  console.log(`   SQL statements per task: ${p.statementsPerTask.toFixed(1)} (measured: every statement Tether sent during the phase ÷ tasks issued)`);
}

function printBaseline(name: string, b: BaselineResult): void {
  console.log(`\n## ${name}`);
  for (const r of [b.single, b.loaded]) {
    const l = r.latency;
    console.log(
      `   ${String(r.concurrency).padStart(3)} in flight: ${rate(r.perSecond)}  p50 ${ms(l.p50)}  p90 ${ms(l.p90)}  p99 ${ms(l.p99)}  max ${ms(l.max)}  (n=${l.count}${r.failed ? `, ${r.failed} failed: ${r.firstError}` : ""})`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Setup helpers

async function waitOnline(devices: Client<typeof DeviceService>, expected: number, timeoutMs: number): Promise<number> {
  const until = now() + timeoutMs;
  let online = 0;
  for (;;) {
    online = 0;
    let pageToken = "";
    do {
      const page = await devices.listDevices({ filter: "online = true", pageSize: 1000, pageToken });
      online += page.devices.length;
      pageToken = page.nextPageToken;
    } while (pageToken);
    if (online >= expected || now() > until) return online;
    await sleep(250);
  }
}

/** Waits until Tether has no open task left (what one phase left behind must not load the next). */
async function drain(tasks: Client<typeof TaskService>): Promise<{ ms: number; open: number }> {
  const t0 = now();
  for (;;) {
    let open = -1;
    try {
      const page = await tasks.listTasks({
        parent: "devices/-",
        filter: "state = QUEUED OR state = SENT OR state = DELIVERED OR state = RUNNING",
        pageSize: 1000,
      });
      open = page.tasks.length + (page.nextPageToken ? 1 : 0);
    } catch {
      // keep waiting; the listing itself may time out under load
    }
    if (open === 0 || now() - t0 > DRAIN_TIMEOUT_MS) return { ms: now() - t0, open };
    await sleep(250);
  }
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<void> {
  if (TCP_NODELAY) forceTcpNoDelay();
  console.log(
    `# Tether tasks benchmark — ${DEVICES} LED devices (device thread: ${DEVICE_THREAD}), ${SECONDS} s per phase, ` +
      `node ${process.version}, ${cpus().length} CPUs, commit ${gitDescribe()}${TCP_NODELAY ? ", WHAT-IF: TCP_NODELAY forced on all TLS sockets" : ""}`,
  );
  const dir = await mkdtemp(path.join(tmpdir(), "tether-bench-"));
  const cleanups = createCleanups();
  cleanups.push(() => rm(dir, { recursive: true, force: true }));

  try {
    // --- Tether, in a child process (the callers stay here) ----------------------------------
    let t = now();
    const app = await startTetherProcess(
      {
        TETHER_PORT: "0",
        TETHER_MQTT_PORT: "0",
        TETHER_DATA_DIR: "data",
        TETHER_CERTS_DIR: "certs",
        TETHER_SHUTDOWN_GRACE_MS: "2000",
        TETHER_METRICS_PORT: "0",
        TETHER_UPLINK_RATE_PER_S: "0",
        LOG_LEVEL: env.BENCH_TETHER_LOG_LEVEL ?? "silent",
        // The embedded database's settings, when given (bench:footprint's what-ifs, measured on the task path).
        ...Object.fromEntries(
          ["TETHER_PGLITE_SHARED_BUFFERS_MB", "TETHER_PGLITE_BASELINE_WASM", "TETHER_PGLITE_VACUUM_S"].filter((k) => env[k]).map((k) => [k, env[k]!]),
        ),
        ...(env.BENCH_DATABASE_URL ? { DATABASE_URL: env.BENCH_DATABASE_URL, TETHER_SIGNING_KEY_SECRET: TEST_SIGNING_KEY_SECRET } : {}),
      },
      dir,
    );
    cleanups.push(() => app.stop());
    const startMs = now() - t;
    log(`tether started in ${ms(startMs)} (api :${app.apiPort}, mqtt :${app.mqttPort}, ${dir})`);

    const pki = await ensureDevPki(app.certsDir);
    const admin = { ca: pki.caPem, cert: pki.admin.certPem, key: pki.admin.keyPem };
    const baseUrl = `https://localhost:${app.apiPort}`;
    const mqttUrl = `mqtts://127.0.0.1:${app.mqttPort}`;
    const sessions = new Http2SessionManager(baseUrl, {}, admin);
    cleanups.push(async () => sessions.abort());
    const transport = createGrpcTransport({ baseUrl, sessionManager: sessions });
    const deviceApi = createClient(DeviceService, transport);
    const ctx: Ctx = {
      app,
      tasks: createClient(TaskService, transport),
      outcomes: new TaskOutcomes(),
      ids: Array.from({ length: DEVICES }, (_, i) => `${ID_PREFIX}-${i + 1}`),
    };

    // --- Devices: registered through DeviceService, then connected ------------------------------
    t = now();
    await mapLimit(ctx.ids, 32, (deviceId) => deviceApi.createDevice({ deviceId, device: { displayName: deviceId, kind: { case: "led", value: {} } } }));
    const registerMs = now() - t;
    log(`registered ${DEVICES} devices through DeviceService in ${ms(registerMs)} (${rate(DEVICES / (registerMs / 1000))})`);

    const devices = startDeviceSide(DEVICE_THREAD);
    cleanups.push(() => devices.stop());
    const fleet = await devices.startFleet({ url: mqttUrl, certsDir: app.certsDir, count: DEVICES, idPrefix: ID_PREFIX, connectConcurrency: 50 });
    log(`connected ${fleet.connected} simulated LEDs (certificates issued by the stack's CA, 50 at a time) in ${ms(fleet.ms)}`);
    t = now();
    const online = await waitOnline(deviceApi, DEVICES, 60_000);
    log(`Tether sees ${online}/${DEVICES} online after ${ms(now() - t)} more`);

    const echo = await devices.startEcho({
      url: mqttUrl,
      certsDir: app.certsDir,
      count: ECHO_DEVICES,
      idPrefix: "bench-echo",
      connectConcurrency: 50,
      echoPrefix: ECHO_PREFIX,
    });
    log(`connected ${echo.connected} raw MQTT echo clients in ${ms(echo.ms)}`);
    const setupMs = now() - T0;

    // --- Baselines -------------------------------------------------------------------------------
    let mqttBase: BaselineResult | undefined;
    let rpcBase: BaselineResult | undefined;
    if (BASELINES) {
      // The broker only trusts the service CNs "admin" and "tether" (startApp configures no others), so
      // the bench's service identity is another in-memory "tether" certificate with its own client id.
      const service = await issueServiceCertificate(pki.ca, "tether");
      log("baseline: raw MQTT QoS 1 round trip …");
      mqttBase = await mqttRoundTrip({
        url: mqttUrl,
        service: { ca: pki.caPem, cert: service.certPem, key: service.keyPem },
        clientId: `bench-service-${process.pid}`,
        echoIds: Array.from({ length: ECHO_DEVICES }, (_, i) => `bench-echo-${i + 1}`),
        echoPrefix: ECHO_PREFIX,
        payloadBytes: 64,
        seconds: BASELINE_SECONDS,
        inflight: INFLIGHT,
      });
      printBaseline(
        `baseline (a): raw MQTT QoS 1 round trip through the embedded broker, 64 B: service client → tether/v1/devices/{id}/down → echo client → ${ECHO_PREFIX}/{id}/up → service client, ${ECHO_DEVICES} echo clients`,
        mqttBase,
      );
      log("baseline: bare echo RPC …");
      rpcBase = await rpcEcho({
        port: await app.echoPort(),
        client: admin,
        seconds: BASELINE_SECONDS,
        inflight: INFLIGHT,
      });
      printBaseline(
        "baseline (b): bare echo RPC (grpc.health.v1.Health/Check) on a second startApiServer in Tether's process, connect-node gRPC client in this one, mTLS",
        rpcBase,
      );
    }

    // --- Task phases -----------------------------------------------------------------------------
    const phases: PhaseResult[] = [];
    const drains: Array<{ ms: number; open: number }> = [];
    const settle = async () => {
      const d = await drain(ctx.tasks);
      drains.push(d);
      log(
        d.open === 0
          ? `backlog drained in ${ms(d.ms)}`
          : `gave up draining after ${ms(d.ms)}: ${d.open < 0 ? "ListTasks failing" : `${d.open >= 1000 ? "≥1000" : d.open} tasks still open`}`,
      );
      await sleep(500);
    };
    const warmUp = async (variant: Variant) => {
      const n = Math.min(DEVICES, 300);
      const deadline = now() + 30_000;
      const runs = await mapLimit(Array.from({ length: n }), 32, () => runTask(ctx, variant, deviceFor(ctx), deadline));
      const bad = runs.filter((r) => r.state !== State.SUCCEEDED).length;
      log(`warm-up (${VARIANT_LABEL[variant]}): ${n} tasks, ${bad} not succeeded`);
      await settle();
    };
    const record = async (p: PhaseResult) => {
      printPhase(p);
      phases.push(p);
      await settle();
    };
    for (const variant of VARIANTS) {
      if (variant === "watch") {
        ctx.outcomes.start(ctx.tasks);
        await sleep(200); // let the stream open server-side before the first task
      }
      await warmUp(variant);
      if (PHASES.has("0")) {
        log(`phase 0 (${VARIANT_LABEL[variant]}) …`);
        await record(await closedPhase(ctx, devices, variant, "phase 0: one task at a time", 1, SOLO_SECONDS));
      }
      if (PHASES.has("1")) {
        log(`phase 1 (${VARIANT_LABEL[variant]}) …`);
        await record(await pacedPhase(ctx, devices, variant));
      }
      if (PHASES.has("2")) {
        log(`phase 2 (${VARIANT_LABEL[variant]}) …`);
        await record(await closedPhase(ctx, devices, variant, `phase 2: closed loop, ${CONCURRENCY} in flight`, CONCURRENCY, SECONDS));
      }
      if (variant === "watch") await ctx.outcomes.stop(); // the other variant does not need the stream
    }

    // --- Summary ---------------------------------------------------------------------------------
    const deviceStats = await devices.stats();
    const mem = (await app.usage()).memory;
    const find = (phase: 0 | 1 | 2, variant = VARIANTS[0]) => phases.find((p) => p.phase.startsWith(`phase ${phase}`) && p.variant === variant);
    const [p0, p1, p2] = [find(0), find(1), find(2)];
    const bestTasks = Math.max(...phases.filter((p) => p.phase.startsWith("phase 2")).map((p) => p.succeededPerSecond));
    const ratios = {
      phase1P99VsAim: p1 && { p99Ms: p1.latency.p99, aimMs: P99_AIM_MS, met: p1.latency.p99 <= P99_AIM_MS },
      maxTasksVsEchoRpc: p2 &&
        rpcBase && {
          tasksPerSecond: p2.succeededPerSecond,
          echoCallsPerSecond: rpcBase.loaded.perSecond,
          ratio: p2.succeededPerSecond / rpcBase.loaded.perSecond,
          aim: THROUGHPUT_AIM,
          met: p2.succeededPerSecond / rpcBase.loaded.perSecond >= THROUGHPUT_AIM,
        },
      taskP50VsMqttP50: mqttBase && {
        mqttP50Ms: mqttBase.single.latency.p50,
        phase1TaskP50Ms: p1?.latency.p50,
        phase1Ratio: p1 && p1.latency.p50 / mqttBase.single.latency.p50,
        soloTaskP50Ms: p0?.latency.p50,
        soloRatio: p0 && p0.latency.p50 / mqttBase.single.latency.p50,
      },
    };

    console.log(`\n# Summary (${DEVICES} devices, ${SECONDS} s per phase${TCP_NODELAY ? ", WHAT-IF TCP_NODELAY" : ""})\n`);
    const rows: string[][] = [];
    for (const p of phases) {
      const l = p.latency;
      const label = `${p.phase.replace(/^phase (\d):/, "task $1:")} [${p.variant === "watch" ? "watch" : "wait_for"}]`;
      rows.push([label, rate(p.succeededPerSecond), ms(l.p50), ms(l.p90), ms(l.p99), ms(l.max), String(p.notSucceeded)]);
    }
    const baselineRows: Array<[string, BaselineResult | undefined]> = [
      ["raw MQTT QoS 1 round trip", mqttBase],
      ["bare echo RPC (Health/Check)", rpcBase],
    ];
    for (const [name, b] of baselineRows) {
      for (const r of b ? [b.single, b.loaded] : []) {
        const l = r.latency;
        rows.push([`${name}, ${r.concurrency} in flight`, rate(r.perSecond), ms(l.p50), ms(l.p90), ms(l.p99), ms(l.max), String(r.failed)]);
      }
    }
    console.log(table(["what", "ok/s", "p50", "p90", "p99", "max", "not ok"], rows));
    console.log(`\n[watch] = CreateTask start → SUCCEEDED arrives on the caller's WatchTasks("devices/-") stream (primary)`);
    console.log(`[wait_for] = CreateTask(wait_for=COMPLETED) start → its response (state SUCCEEDED) arrives`);

    const verdict = (ok: boolean) => (ok ? "met" : "MISSED");
    console.log(`\nRatios (primary variant: ${VARIANT_LABEL[VARIANTS[0]!]})`);
    if (p1) console.log(`  phase-1 p99 ${ms(p1.latency.p99)} vs aim ${P99_AIM_MS} ms at ${RATE}/s offered → ${verdict(p1.latency.p99 <= P99_AIM_MS)}`);
    if (ratios.maxTasksVsEchoRpc && rpcBase && p2) {
      const r = ratios.maxTasksVsEchoRpc;
      console.log(
        `  max tasks/s ÷ bare echo RPC calls/s = ${rate(r.tasksPerSecond)} ÷ ${rate(r.echoCallsPerSecond)} = ${r.ratio.toFixed(2)} (aim ≥ ${THROUGHPUT_AIM}) → ${verdict(r.met)}` +
          (bestTasks > p2.succeededPerSecond ? `  [best variant ${rate(bestTasks)} → ${(bestTasks / rpcBase.loaded.perSecond).toFixed(2)}]` : ""),
      );
    }
    if (mqttBase) {
      const m50 = mqttBase.single.latency.p50;
      if (p1)
        console.log(
          `  task round-trip p50 (phase 1) ÷ raw MQTT round-trip p50 (1 in flight) = ${ms(p1.latency.p50)} ÷ ${ms(m50)} = ${(p1.latency.p50 / m50).toFixed(1)}×`,
        );
      if (p0)
        console.log(
          `  task round-trip p50 (one at a time) ÷ raw MQTT round-trip p50 (1 in flight) = ${ms(p0.latency.p50)} ÷ ${ms(m50)} = ${(p0.latency.p50 / m50).toFixed(1)}×`,
        );
    }
    console.log(
      `\nDevices: ${deviceStats.devices} connected, ${deviceStats.executions} executions, duplicates ${deviceStats.duplicates}${deviceStats.duplicates === 0 ? " (at-most-once held)" : " (AT-MOST-ONCE VIOLATED)"}`,
    );
    if (processErrors.length) {
      console.log(
        `\n!! ${processErrors.length} uncaught error(s) in the process during the run; figures after the first are suspect. First:\n${processErrors[0]}`,
      );
    }
    if (ctx.outcomes.streamErrors.length)
      console.log(`WatchTasks stream errors: ${ctx.outcomes.streamErrors.length} (reopened ${ctx.outcomes.reopened}), first: ${ctx.outcomes.streamErrors[0]}`);
    const tetherEnd = await app.usage();
    const counters = tetherEnd.counters;
    console.log(`Tether counters: ${Object.keys(counters).length ? JSON.stringify(counters) : "{}"}`);
    console.log(
      `Memory of Tether's process: rss ${mib(mem.rss)} (database thread included), main heap ${mib(mem.heapUsed)} used / ${mib(mem.heapTotal)}, device thread heap ${mib(deviceStats.heapUsed)} / ${mib(deviceStats.heapTotal)}, external ${mib(mem.external)}`,
    );

    const results = {
      benchmark: "tasks",
      date: new Date().toISOString(),
      commit: gitDescribe(),
      node: process.version,
      cpus: cpus().length,
      config: {
        tcpNoDelayWhatIf: TCP_NODELAY,
        phases: [...PHASES],
        devices: DEVICES,
        secondsPerPhase: SECONDS,
        rate: RATE,
        concurrency: CONCURRENCY,
        graceSeconds: GRACE_S,
        echoDevices: ECHO_DEVICES,
        baselineInflight: INFLIGHT,
        variants: VARIANTS,
        deviceThread: DEVICE_THREAD,
      },
      setup: { tetherStartMs: startMs, registerMs, fleetConnectMs: fleet.ms, echoConnectMs: echo.ms, totalMs: setupMs },
      phases,
      baselines: { mqttRoundTrip: mqttBase ?? null, echoRpc: rpcBase ?? null },
      ratios,
      devices: deviceStats,
      drains,
      processErrors,
      watchStream: { events: ctx.outcomes.events, errors: ctx.outcomes.streamErrors, reopened: ctx.outcomes.reopened },
      tetherCounters: counters,
      memory: { rss: mem.rss, heapUsed: mem.heapUsed, heapTotal: mem.heapTotal, external: mem.external, deviceThreadHeapUsed: deviceStats.heapUsed },
    };
    await writeResults("tasks", results);
  } finally {
    const t = now();
    await cleanups.run();
    log(`stopped devices, clients and Tether in ${ms(now() - t)}`);
  }
}

runBench(main);
