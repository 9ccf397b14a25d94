/**
 * Replicas benchmark (issue 7, production mode): tasks and telemetry through REAL servers, with 1
 * and then 2 `tether serve` replicas, printed side by side.
 *
 *   npm run bench:replicas                              # 200 LEDs, 64 in flight, 15 s + 10 s per config (~2-3 min)
 *   BENCH_DEVICES=50 BENCH_TASK_SECONDS=5 BENCH_TELEMETRY_SECONDS=5 npm run bench:replicas
 *
 * Servers: PostgreSQL on 127.0.0.1:5432 (TEST_POSTGRES_URL; a FRESH database per configuration, so
 * both start from the same empty state), one Mosquitto started from deploy/mosquitto/ on a free port
 * (tests/helpers/mosquitto.ts; shared by both configurations), and RabbitMQ on 127.0.0.1:5672
 * guest/guest (BENCH_AMQP_URL) with a unique TETHER_AMQP_PREFIX per configuration, so task/device
 * change feeds cross replicas. If RabbitMQ is not reachable the run goes on without AMQP_URL (and
 * says so): each replica then only sees its own changes, so task completion is polled with GetTask.
 *
 * Replicas are `bin/tether.js serve` child processes (tests/helpers/replica.ts) sharing one dev PKI
 * (TETHER_CERTS_DIR), DATABASE_URL and MQTT_URL; Tether's MQTT bridge uses the PKI's service
 * identity and a shared subscription, so uplink is split between the replicas.
 *
 * Per configuration:
 *   tasks:     BENCH_DEVICES simulated LEDs (Tether's device SDK, worker thread) on Mosquitto; a closed
 *              loop of BENCH_INFLIGHT callers, each CreateTask(wait_for=COMPLETED) → SUCCEEDED,
 *              round-robin over the replicas' API ports, for BENCH_TASK_SECONDS. Then every task row
 *              must end SUCCEEDED (lost = not) and every device must have run each task once
 *              (duplicates = executions beyond one).
 *   telemetry: BENCH_PUBLISHERS device clients (worker thread) publish Uplink{TelemetryBatch} of
 *              BENCH_BATCH samples, QoS 1, BENCH_WINDOW in flight each, for BENCH_TELEMETRY_SECONDS;
 *              stored rate = rows counted in PostgreSQL ÷ (first publish → last new row seen).
 *   memory:    each replica's `tether_process_resident_memory_bytes` (prom-client's
 *              process_resident_memory_bytes) from its /metrics (max of the readings
 *              after each phase).
 * All processes (Tether replicas, PostgreSQL, Mosquitto, RabbitMQ, simulated clients) share this
 * machine's cores: the "2 replicas" column measures contention as much as scale-out.
 *
 * Prints a table and writes tests/bench/results/replicas-latest.json; never fails on timing.
 *
 * Environment: BENCH_DEVICES (200), BENCH_INFLIGHT (64), BENCH_TASK_SECONDS (15), BENCH_PUBLISHERS
 * (50), BENCH_BATCH (100), BENCH_WINDOW (4), BENCH_TELEMETRY_SECONDS (10), BENCH_REPLICAS (`1,2`),
 * BENCH_AMQP_URL (amqp://guest:guest@127.0.0.1:5672; `none` skips RabbitMQ), BENCH_TETHER_LOG_LEVEL
 * (info: the replica helper waits for the "tether ready" line), TEST_POSTGRES_URL.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import path from "node:path";
import { type Client, createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import amqp from "amqplib";
import pino from "pino";
import postgres from "postgres";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { Task_State as State } from "../../gen/tether/v1/task_pb.js";
import { CreateTaskRequest_WaitFor as WaitFor, TaskService } from "../../gen/tether/v1/task_service_pb.js";
import { ensureDevPki } from "../../src/pki/dev-pki.js";
import { migrate } from "../../src/store/migrate.js";
import { type RunningMosquitto, startMosquitto, writeCrl } from "../helpers/mosquitto.js";
import { freshDatabase } from "../helpers/postgres.js";
import { metricValue, type Replica, startReplica } from "../helpers/replica.js";
import { closedLoop, type ClosedLoopResult } from "./lib/closed-loop.js";
import { startDeviceSide } from "./lib/device-side.js";
import { createCleanups, envNumber, gitDescribe, recordProcessErrors, runBench, writeResults } from "./lib/harness.js";
import { mapLimit, mib, ms, now, rate, sleep, table } from "./lib/stats.js";
import { epochMs, startPublisherSide } from "./lib/telemetry-publishers.js";

const env = process.env;
const DEVICES = Math.floor(envNumber("BENCH_DEVICES", 200, 1));
const INFLIGHT = Math.floor(envNumber("BENCH_INFLIGHT", 64, 1));
const TASK_SECONDS = envNumber("BENCH_TASK_SECONDS", 15, 1);
const PUBLISHERS = Math.floor(envNumber("BENCH_PUBLISHERS", 50, 1));
const BATCH = Math.floor(envNumber("BENCH_BATCH", 100, 1));
const WINDOW = Math.floor(envNumber("BENCH_WINDOW", 4, 1));
const TM_SECONDS = envNumber("BENCH_TELEMETRY_SECONDS", 10, 1);
const REPLICAS = (env.BENCH_REPLICAS ?? "1,2")
  .split(",")
  .map((x) => Math.floor(Number(x)))
  .filter((x) => x >= 1);
const AMQP_URL = env.BENCH_AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672";
const TETHER_LOG_LEVEL = env.BENCH_TETHER_LOG_LEVEL ?? "info";
const DRAIN_MS = 30_000;
/** Tether's default uplink partition count, set explicitly so the cleanup knows every queue name. */
const PARTITIONS = 4;
const STALL_MS = 10_000;
const METRIC = "bench_replicas";
const log = pino({ level: "warn" });
const processErrors = recordProcessErrors();
const T0 = now();
const say = (msg: string) => console.log(`[${((now() - T0) / 1000).toFixed(1).padStart(5)} s] ${msg}`);

interface TaskFigures {
  loop: ClosedLoopResult;
  created: number;
  succeeded: number;
  lost: number;
  openAfterDrain: number;
  states: Record<string, number>;
  executions: number;
  duplicates: number;
  uplinkPerReplica: number[];
}

interface TelemetryFigures {
  sent: number;
  stored: number;
  seconds: number;
  storedPerSecond: number;
  failedPublishes: number;
}

interface ConfigResult {
  replicas: number;
  amqp: boolean;
  setup: { replicasReadyMs: number; registerMs: number; fleetConnectMs: number };
  tasks: TaskFigures;
  telemetry: TelemetryFigures;
  rssBytes: number[];
  /** 1-minute load average at the start and the end of the configuration (other jobs on the machine count too). */
  loadAverage: [number, number];
}

async function amqpReachable(url: string): Promise<string | undefined> {
  if (url === "none") return "BENCH_AMQP_URL=none";
  try {
    const conn = await amqp.connect(url, { timeout: 5000 });
    await conn.close();
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/** Deletes what Tether declared on the shared RabbitMQ node under `prefix` (its feed queues are exclusive). */
async function deleteAmqpPrefix(prefix: string): Promise<void> {
  const conn = await amqp.connect(AMQP_URL, { timeout: 5000 });
  try {
    const ch = await conn.createChannel();
    for (let i = 0; i < PARTITIONS; i++) await ch.deleteQueue(`${prefix}.uplink.${i}`);
    await ch.deleteQueue(`${prefix}.uplink.dead`);
    await ch.deleteExchange(`${prefix}.events`);
    await ch.close();
  } finally {
    await conn.close();
  }
}

async function rssOf(r: Replica): Promise<number> {
  try {
    return metricValue(await (await fetch(`${r.opsUrl}/metrics`)).text(), "tether_process_resident_memory_bytes");
  } catch {
    return NaN;
  }
}

async function uplinkOf(r: Replica): Promise<number> {
  try {
    return metricValue(await (await fetch(`${r.opsUrl}/metrics`)).text(), "tether_uplink_received_total");
  } catch {
    return NaN;
  }
}

async function runConfig(n: number, certsDir: string, dir: string, broker: RunningMosquitto, useAmqp: boolean): Promise<ConfigResult> {
  const cleanups = createCleanups();
  const load0 = loadavg()[0]!;
  try {
    const db = await freshDatabase(`tether_bench_replicas_${n}`);
    cleanups.push(() => db.drop());
    await migrate(db.url, log);
    const sql = postgres(db.url, { max: 2, onnotice: () => {} });
    cleanups.push(() => sql.end());

    // --- replicas ---------------------------------------------------------------------------------
    let t = now();
    const prefix = `bench_${process.pid}_${Date.now()}_${n}`;
    const replicaEnv = {
      DATABASE_URL: db.url,
      MQTT_URL: broker.url,
      TETHER_CERTS_DIR: certsDir,
      LOG_LEVEL: TETHER_LOG_LEVEL,
      // The development RabbitMQ's guest account is refused in production mode unless allowed.
      ...(useAmqp ? { AMQP_URL, TETHER_AMQP_PREFIX: prefix, TETHER_AMQP_UPLINK_PARTITIONS: String(PARTITIONS), TETHER_ALLOW_INSECURE: "1" } : {}),
    };
    // Runs after the replicas stopped: the durable queues and exchange of this run's prefix go away.
    if (useAmqp) cleanups.push(() => deleteAmqpPrefix(prefix));
    const replicas = await Promise.all(
      Array.from({ length: n }, (_, i) => startReplica(`r${i + 1}`, { ...replicaEnv, TETHER_DATA_DIR: path.join(dir, `data-${n}-${i + 1}`) })),
    );
    cleanups.push(() => Promise.all(replicas.map((r) => r.stop())));
    const replicasReadyMs = now() - t;
    say(
      `${n} replica(s) ready in ${ms(replicasReadyMs)} (api ${replicas.map((r) => `:${r.apiPort}`).join(", ")}${useAmqp ? ", RabbitMQ feeds" : ", no AMQP"})`,
    );

    const pki = await ensureDevPki(certsDir);
    const admin = { ca: pki.caPem, cert: pki.admin.certPem, key: pki.admin.keyPem };
    const apis = replicas.map((r) => {
      const sessions = new Http2SessionManager(r.baseUrl, {}, admin);
      cleanups.push(async () => sessions.abort());
      const transport = createGrpcTransport({ baseUrl: r.baseUrl, sessionManager: sessions });
      return { devices: createClient(DeviceService, transport), tasks: createClient(TaskService, transport) };
    });
    const rss: number[][] = replicas.map(() => []);
    const readRss = async () => {
      for (const [i, v] of (await Promise.all(replicas.map(rssOf))).entries()) rss[i]!.push(v);
    };

    // --- devices ----------------------------------------------------------------------------------
    t = now();
    const ledIds = Array.from({ length: DEVICES }, (_, i) => `bench-rled-${i + 1}`);
    const tmIds = Array.from({ length: PUBLISHERS }, (_, i) => `bench-rtm-${i + 1}`);
    const register = (deviceId: string, i: number) =>
      apis[i % n]!.devices.createDevice({ deviceId, device: { displayName: deviceId, kind: { case: "led", value: {} } } });
    await register(ledIds[0]!, 0);
    await mapLimit([...ledIds.slice(1), ...tmIds], 16, (id, i) => register(id, i + 1));
    const registerMs = now() - t;

    const devices = startDeviceSide("worker");
    let devicesStopped: Promise<void> | undefined;
    const stopDevices = () => (devicesStopped ??= devices.stop());
    cleanups.push(stopDevices);
    const fleet = await devices.startFleet({ url: broker.url, certsDir, count: DEVICES, idPrefix: "bench-rled", connectConcurrency: 25 });
    say(`registered ${DEVICES + PUBLISHERS} devices in ${ms(registerMs)}; ${fleet.connected} LEDs connected to Mosquitto in ${ms(fleet.ms)}`);
    await waitOnline(apis[0]!.devices, DEVICES, 60_000);

    // --- tasks ------------------------------------------------------------------------------------
    const createOne = async (api: (typeof apis)[number], deviceId: string, value: number, deadlineMs: number) => {
      const task = { command: { kind: { case: "led" as const, value: { action: { case: "setBrightness" as const, value } } } } };
      if (useAmqp) {
        const r = await api.tasks.createTask(
          { parent: `devices/${deviceId}`, task, waitFor: WaitFor.COMPLETED, waitTimeout: { seconds: BigInt(Math.ceil(deadlineMs / 1000)) } },
          { timeoutMs: deadlineMs + 2000 },
        );
        if (r.state !== State.SUCCEEDED) throw new Error(`${r.name} ended ${State[r.state]}`);
        return;
      }
      // Without RabbitMQ a replica does not hear about results another replica processed: poll.
      const r = await api.tasks.createTask({ parent: `devices/${deviceId}`, task }, { timeoutMs: deadlineMs });
      const until = now() + deadlineMs;
      for (;;) {
        const g = await api.tasks.getTask({ name: r.name });
        if (g.state === State.SUCCEEDED) return;
        if (g.state > State.SUCCEEDED || now() > until) throw new Error(`${r.name} is ${State[g.state]}`);
        await sleep(10);
      }
    };
    let seq = 0;
    const op = () => {
      const k = seq++;
      return createOne(apis[k % n]!, ledIds[k % DEVICES]!, k % 101, 30_000);
    };
    say(`warm-up: 100 tasks …`);
    await mapLimit(Array.from({ length: 100 }), 16, () => op().catch(() => {}));
    say(`tasks: closed loop, ${INFLIGHT} in flight, ${TASK_SECONDS} s …`);
    const up0 = await Promise.all(replicas.map(uplinkOf));
    const loop = await closedLoop(INFLIGHT, TASK_SECONDS, op);
    const up1 = await Promise.all(replicas.map(uplinkOf));
    await readRss();
    // Drain: every task row should end SUCCEEDED.
    const drainUntil = now() + DRAIN_MS;
    let states: Record<string, number> = {};
    for (;;) {
      const rows = await sql<{ state: string; n: number }[]>`SELECT state, count(*)::int AS n FROM tasks GROUP BY state`;
      states = Object.fromEntries(rows.map((r) => [r.state, r.n]));
      const open = ["QUEUED", "SENT", "DELIVERED", "RUNNING"].reduce((a, s) => a + (states[s] ?? 0), 0);
      if (open === 0 || now() > drainUntil) break;
      await sleep(250);
    }
    const created = Object.values(states).reduce((a, b) => a + b, 0);
    const succeeded = states.SUCCEEDED ?? 0;
    await sleep(500); // let the last executions' counters settle in the worker
    const ds = await devices.stats();
    const tasks: TaskFigures = {
      loop,
      created,
      succeeded,
      lost: created - succeeded,
      openAfterDrain: ["QUEUED", "SENT", "DELIVERED", "RUNNING"].reduce((a, s) => a + (states[s] ?? 0), 0),
      states,
      executions: ds.executions,
      duplicates: ds.duplicates,
      uplinkPerReplica: up1.map((v, i) => v - up0[i]!),
    };
    say(
      `tasks: ${rate(loop.perSecond)} p50 ${ms(loop.latency.p50)} p99 ${ms(loop.latency.p99)}; ${created} rows, ${succeeded} SUCCEEDED, ${ds.executions} executions, ${ds.duplicates} duplicated; uplink per replica ${tasks.uplinkPerReplica.join(" / ")}`,
    );
    await stopDevices();

    // --- telemetry --------------------------------------------------------------------------------
    const pubs = startPublisherSide();
    cleanups.push(() => pubs.stop());
    const timeBaseMs = Date.now() - 12 * 3_600_000;
    const conn = await pubs.connect({ group: "tm", url: broker.url, certsDir, ids: tmIds, identity: "device", connectConcurrency: 25, timeBaseMs });
    say(`telemetry: ${conn.connected} publishers connected in ${ms(conn.ms)}; ${BATCH} samples per message, ${WINDOW} in flight each, ${TM_SECONDS} s …`);
    const count = async () => (await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM telemetry WHERE metric = ${METRIC}`)[0]!.n;
    let stored = 0;
    let lastChangeAt = epochMs();
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const c = await count();
        if (c !== stored) {
          stored = c;
          lastChangeAt = epochMs();
          pubs.progress(c);
        }
        await sleep(200);
      }
    })();
    const run = await pubs.run({ group: "tm", seconds: TM_SECONDS, samplesPerMessage: BATCH, metric: METRIC, window: WINDOW, backlog: 50_000 });
    while (stored < run.samples && epochMs() - lastChangeAt < STALL_MS) await sleep(100);
    polling = false;
    await poller;
    stored = await count();
    const seconds = (lastChangeAt - run.firstPublishAt) / 1000;
    const telemetry: TelemetryFigures = { sent: run.samples, stored, seconds, storedPerSecond: stored / seconds, failedPublishes: run.failed };
    await readRss();
    say(`telemetry: sent ${run.samples} samples, stored ${stored} in ${seconds.toFixed(1)} s → ${rate(telemetry.storedPerSecond)}`);

    return {
      replicas: n,
      amqp: useAmqp,
      setup: { replicasReadyMs, registerMs, fleetConnectMs: fleet.ms },
      tasks,
      telemetry,
      loadAverage: [load0, loadavg()[0]!],
      rssBytes: rss.map((xs) => (xs.some(Number.isFinite) ? Math.max(...xs.filter(Number.isFinite)) : NaN)),
    };
  } finally {
    await cleanups.run();
  }
}

async function waitOnline(devices: Client<typeof DeviceService>, expected: number, timeoutMs: number): Promise<number> {
  const until = now() + timeoutMs;
  for (;;) {
    let online = 0;
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

async function main(): Promise<void> {
  const amqpProblem = await amqpReachable(AMQP_URL);
  const useAmqp = amqpProblem === undefined;
  console.log(
    `# Tether replicas benchmark — ${REPLICAS.join(" vs ")} replica(s) of \`tether serve\` on PostgreSQL + Mosquitto${useAmqp ? " + RabbitMQ" : ""}, ` +
      `node ${process.version}, ${cpus().length} CPUs, commit ${gitDescribe()}`,
  );
  if (!useAmqp)
    console.log(
      `!! RabbitMQ not used (${amqpProblem}): running WITHOUT AMQP_URL; task completion is polled with GetTask, as replicas do not share change feeds.`,
    );
  const dir = await mkdtemp(path.join(tmpdir(), "tether-bench-replicas-"));
  const cleanups = createCleanups();
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  try {
    const certsDir = path.join(dir, "certs");
    await ensureDevPki(certsDir);
    await writeCrl(certsDir, []);
    const broker = await startMosquitto({ certsDir });
    cleanups.push(() => broker.stop());
    say(`mosquitto (deploy/mosquitto/mosquitto.conf) on ${broker.url}`);

    const results: ConfigResult[] = [];
    for (const n of REPLICAS) {
      console.log(`\n## ${n} replica(s) — fresh database`);
      results.push(await runConfig(n, certsDir, dir, broker, useAmqp));
      await sleep(1000);
    }

    // --- side-by-side ------------------------------------------------------------------------------
    console.log(
      `\n# Summary — ${DEVICES} LEDs, ${INFLIGHT} tasks in flight for ${TASK_SECONDS} s; ${PUBLISHERS} publishers × ${BATCH} samples/message for ${TM_SECONDS} s`,
    );
    const base = results[0]!;
    const ratio = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? `${(a / b).toFixed(2)}×` : "–");
    const header = [
      "",
      ...results.map((r) => `${r.replicas} replica${r.replicas > 1 ? "s" : ""}`),
      ...results.slice(1).map((r) => `ratio ${r.replicas}/${base.replicas}`),
    ];
    const row = (label: string, fmt: (r: ConfigResult) => string, val?: (r: ConfigResult) => number) => [
      label,
      ...results.map(fmt),
      ...results.slice(1).map((r) => (val ? ratio(val(r), val(base)) : "")),
    ];
    const rows = [
      row(
        "tasks SUCCEEDED/s (closed loop)",
        (r) => rate(r.tasks.loop.perSecond),
        (r) => r.tasks.loop.perSecond,
      ),
      row(
        "task create→SUCCEEDED p50",
        (r) => ms(r.tasks.loop.latency.p50),
        (r) => r.tasks.loop.latency.p50,
      ),
      row(
        "task create→SUCCEEDED p99",
        (r) => ms(r.tasks.loop.latency.p99),
        (r) => r.tasks.loop.latency.p99,
      ),
      row("task rows (incl. 100 warm-up) / lost", (r) => `${r.tasks.created} / ${r.tasks.lost}`),
      row("executions / duplicated", (r) => `${r.tasks.executions} / ${r.tasks.duplicates}`),
      row("failed calls in the loop", (r) => String(r.tasks.loop.failed)),
      row("uplink msgs per replica (tasks)", (r) => r.tasks.uplinkPerReplica.join(" / ")),
      row(
        "telemetry samples stored/s",
        (r) => rate(r.telemetry.storedPerSecond),
        (r) => r.telemetry.storedPerSecond,
      ),
      row("telemetry sent / stored", (r) => `${r.telemetry.sent} / ${r.telemetry.stored}`),
      row("rss per replica (max)", (r) => r.rssBytes.map(mib).join(" + ")),
      row(
        "rss total",
        (r) => mib(r.rssBytes.reduce((a, b) => a + b, 0)),
        (r) => r.rssBytes.reduce((a, b) => a + b, 0),
      ),
      row("1-min load average, start → end", (r) => `${r.loadAverage[0].toFixed(1)} → ${r.loadAverage[1].toFixed(1)}`),
    ];
    console.log(table(header, rows));
    console.log(
      `\nCaveat: every process here — ${Math.max(...REPLICAS)} Tether replica(s), PostgreSQL, Mosquitto${useAmqp ? ", RabbitMQ" : ""}, the simulated devices and publishers, this script — shares ${cpus().length} CPU core(s). ` +
        `A second replica adds a second event loop but no CPU, so its column shows coordination overhead and contention, not what a second machine would add.`,
    );
    if (!useAmqp) console.log(`Ran WITHOUT RabbitMQ (${amqpProblem}).`);
    for (const r of results) if (r.tasks.loop.firstError) console.log(`${r.replicas} replica(s): first task error: ${r.tasks.loop.firstError}`);
    if (processErrors.length) console.log(`\n!! ${processErrors.length} uncaught error(s) during the run; first:\n${processErrors[0]}`);

    await writeResults("replicas", {
      benchmark: "replicas",
      date: new Date().toISOString(),
      commit: gitDescribe(),
      node: process.version,
      cpus: cpus().length,
      config: {
        devices: DEVICES,
        inflight: INFLIGHT,
        taskSeconds: TASK_SECONDS,
        publishers: PUBLISHERS,
        batch: BATCH,
        window: WINDOW,
        telemetrySeconds: TM_SECONDS,
        replicas: REPLICAS,
        amqp: useAmqp,
        amqpProblem: amqpProblem ?? null,
        freshDatabasePerConfig: true,
      },
      results,
      processErrors,
    });
  } finally {
    await cleanups.run();
  }
}

runBench(main);
