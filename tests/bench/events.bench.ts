/**
 * Fleet events benchmark: task results fanned out to 10 webhook subscriptions.
 *
 *   npm run bench:events                          # 200 LEDs, 10 s per phase (~1.5 min in all)
 *   BENCH_DEVICES=50 BENCH_SECONDS=3 npm run bench:events
 *
 * Tether runs embedded in a child process (lib/tether-side.ts), the LED fleet in another
 * (lib/device-side.ts); the HTTPS receivers (one server, one path per subscription) and the gRPC
 * callers are in this process. Tasks are driven by a closed loop of CreateTask(wait_for =
 * COMPLETED), so every task goes QUEUED → SENT → … → SUCCEEDED on a real device over MQTT, and
 * every state it enters is a `task.state_changed` event for each subscription.
 *
 * Phases: 1) no subscription (task throughput without the outbox); 2) 10 subscriptions, all
 * alive; 3) the same with one endpoint dead (BENCH_DEAD=refuse: connections refused, or hang:
 * accepted and never answered). Per phase: tasks/s, events delivered/s, delivery latency (the
 * event's `time` → the receiver has the body), Tether's RSS. Then the bare baseline: the same
 * receivers hit by a plain keep-alive HTTPS client with the same bodies. Aims are printed
 * met/MISSED, never failing the run.
 *
 * Environment: BENCH_DEVICES [200] BENCH_SECONDS [10] BENCH_CONCURRENCY [64] BENCH_DEAD [refuse]
 *   BENCH_DRAIN_SECONDS [30] (longest wait for a phase's events after it) BENCH_TETHER_LOG_LEVEL [silent]
 *   BENCH_DATABASE_URL (an empty PostgreSQL database instead of embedded PGlite)
 */
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import https from "node:https";
import type { AddressInfo } from "node:net";
import net from "node:net";
import { cpus, tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { Task_State as State } from "../../gen/tether/v1/task_pb.js";
import { CreateTaskRequest_WaitFor as WaitFor, TaskService } from "../../gen/tether/v1/task_service_pb.js";
import { WebhookService } from "../../gen/tether/v1/webhook_service_pb.js";
import { ensureDevPki } from "../../src/pki/dev-pki.js";
import { TEST_SIGNING_KEY_SECRET } from "../helpers/stack.js";
import { closedLoop } from "./lib/closed-loop.js";
import { startDeviceSide } from "./lib/device-side.js";
import { createCleanups, envNumber, gitDescribe, recordProcessErrors, runBench, writeResults } from "./lib/harness.js";
import { type LatencySummary, mapLimit, mib, ms, now, rate, sleep, table } from "./lib/stats.js";
import { startChildRpc } from "./lib/child-rpc.js";
import { startTetherProcess } from "./lib/tether-side.js";

const env = process.env;
const DEVICES = Math.floor(envNumber("BENCH_DEVICES", 200, 1));
const SECONDS = envNumber("BENCH_SECONDS", 10, 1);
const CONCURRENCY = Math.floor(envNumber("BENCH_CONCURRENCY", 64, 1));
const DRAIN_MS = envNumber("BENCH_DRAIN_SECONDS", 30, 0) * 1000;
const DEAD: "refuse" | "hang" = env.BENCH_DEAD === "hang" ? "hang" : "refuse";
const SUBSCRIPTIONS = 10;
/** The issue's aim: 10,000 task results/s, each fanned out to 10 subscriptions. */
const AIM_RESULTS_PER_S = 10_000;
const P99_AIM_MS = 1000;
const ID_PREFIX = "bench-ev";
const processErrors = recordProcessErrors();
const T0 = now();
const log = (msg: string) => console.log(`[${((now() - T0) / 1000).toFixed(1).padStart(5)} s] ${msg}`);

/** The receivers, in a child process (webhook-receivers-process.ts): counts and latencies since `reset`. */
async function startReceivers(tls: { cert: string; key: string }) {
  const rpc = startChildRpc(fileURLToPath(new URL("./lib/webhook-receivers-process.ts", import.meta.url)), "webhook receivers");
  const port = await rpc.call<number>("start", tls);
  return {
    url: (i: number) => `https://localhost:${port}/hook/${i}`,
    port,
    reset: () => rpc.call("reset"),
    read: () => rpc.call<{ delivered: number; results: number; latency: LatencySummary; paths: number; cpu: NodeJS.CpuUsage }>("read"),
    close: async () => {
      await rpc.call("close").catch(() => undefined);
      await rpc.end();
    },
  };
}

/** An endpoint that refuses connections (a port with nothing listening) or accepts and never answers. */
async function deadEndpoint(mode: "refuse" | "hang"): Promise<{ url: string; close(): void }> {
  const server = net.createServer((socket) => socket.on("error", () => {}));
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as AddressInfo).port;
  if (mode === "refuse") {
    server.close();
    return { url: `https://localhost:${port}/dead`, close: () => {} };
  }
  return { url: `https://localhost:${port}/hang`, close: () => server.close() };
}

/** The bare baseline: a keep-alive HTTPS client POSTing a task event's body, `concurrency` at once. */
async function bareClient(url: string, ca: string, body: Buffer, concurrency: number, seconds: number) {
  const agent = new https.Agent({ keepAlive: true, maxSockets: concurrency, ca });
  const post = () =>
    new Promise<void>((resolve, reject) => {
      const req = https.request(url, { method: "POST", agent, headers: { "content-type": "application/json", "content-length": body.length } }, (res) => {
        res.resume();
        res.on("end", () => resolve());
      });
      req.on("error", reject);
      req.end(body);
    });
  const r = await closedLoop(concurrency, seconds, post);
  agent.destroy();
  return r;
}

interface Phase {
  phase: string;
  tasksPerSecond: number;
  taskFailures: number;
  eventsDelivered: number;
  eventsPerSecond: number;
  resultsDeliveredPerSecond: number;
  drainMs: number;
  latency: LatencySummary;
  rssBytes: number;
  cpuMsPerTask: number;
  firstError?: string;
}

async function main(): Promise<void> {
  console.log(
    `# Tether events benchmark — ${DEVICES} LEDs, ${SUBSCRIPTIONS} webhook subscriptions to task.state_changed, ${SECONDS} s per phase, ` +
      `closed loop of ${CONCURRENCY} CreateTask(wait_for=COMPLETED), node ${process.version}, ${cpus().length} CPUs, commit ${gitDescribe()}`,
  );
  const dir = await mkdtemp(path.join(tmpdir(), "tether-bench-events-"));
  const cleanups = createCleanups();
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  try {
    // The PKI first: the webhook sender trusts its CA (TETHER_WEBHOOK_CA_FILE) from the start.
    const certsDir = path.join(dir, "certs");
    const pki = await ensureDevPki(certsDir);
    const app = await startTetherProcess(
      {
        TETHER_PORT: "0",
        TETHER_MQTT_PORT: "0",
        TETHER_DATA_DIR: "data",
        TETHER_CERTS_DIR: "certs",
        TETHER_SHUTDOWN_GRACE_MS: "2000",
        TETHER_METRICS_PORT: "0",
        TETHER_UPLINK_RATE_PER_S: "0",
        // Receivers on loopback: the SSRF rule would refuse them (development only).
        TETHER_WEBHOOK_ALLOW_HTTP: "1",
        TETHER_WEBHOOK_CA_FILE: path.join(certsDir, "ca.crt"),
        TETHER_WEBHOOK_TIMEOUT_MS: "2000",
        LOG_LEVEL: env.BENCH_TETHER_LOG_LEVEL ?? "silent",
        ...Object.fromEntries(
          ["TETHER_PGLITE_SHARED_BUFFERS_MB", "TETHER_PGLITE_BASELINE_WASM", "TETHER_PGLITE_VACUUM_S"].filter((k) => env[k]).map((k) => [k, env[k]!]),
        ),
        ...(env.BENCH_DATABASE_URL ? { DATABASE_URL: env.BENCH_DATABASE_URL, TETHER_SIGNING_KEY_SECRET: TEST_SIGNING_KEY_SECRET } : {}),
      },
      dir,
    );
    cleanups.push(() => app.stop());
    const admin = { ca: pki.caPem, cert: pki.admin.certPem, key: pki.admin.keyPem };
    const baseUrl = `https://localhost:${app.apiPort}`;
    const sessions = new Http2SessionManager(baseUrl, {}, admin);
    cleanups.push(async () => sessions.abort());
    const transport = createGrpcTransport({ baseUrl, sessionManager: sessions });
    const devicesApi = createClient(DeviceService, transport);
    const tasks = createClient(TaskService, transport);
    const hooks = createClient(WebhookService, transport);
    const receivers = await startReceivers({ cert: pki.server.certPem, key: pki.server.keyPem });
    cleanups.push(async () => receivers.close());

    const ids = Array.from({ length: DEVICES }, (_, i) => `${ID_PREFIX}-${i + 1}`);
    await mapLimit(ids, 32, (deviceId) => devicesApi.createDevice({ deviceId, device: { kind: { case: "led", value: {} } } }));
    const fleetSide = startDeviceSide("process");
    cleanups.push(() => fleetSide.stop());
    const fleet = await fleetSide.startFleet({
      url: `mqtts://127.0.0.1:${app.mqttPort}`,
      certsDir,
      count: DEVICES,
      idPrefix: ID_PREFIX,
      connectConcurrency: 50,
    });
    log(`tether up, ${fleet.connected}/${DEVICES} LEDs connected in ${ms(fleet.ms)}`);
    await sleep(1000);

    let n = 0;
    const drive = (seconds = SECONDS) =>
      closedLoop(CONCURRENCY, seconds, async () => {
        const t = await tasks.createTask({
          parent: `devices/${ids[n++ % ids.length]}`,
          task: { command: { kind: { case: "led", value: { action: { case: "setBrightness", value: n % 101 } } } } },
          waitFor: WaitFor.COMPLETED,
          waitTimeout: { seconds: 10n },
        });
        if (t.state !== State.SUCCEEDED) throw new Error(`task ended ${State[t.state]}`);
      });

    const warm = await drive(Math.min(3, SECONDS));
    log(`warm-up: ${rate(warm.perSecond)} tasks`);
    const phases: Phase[] = [];
    /** One phase: drive tasks, then wait (up to BENCH_DRAIN_SECONDS) until the live receivers stop getting events. */
    const phase = async (name: string, expectEvents: boolean) => {
      await receivers.reset();
      const u0 = await app.usage();
      const t0 = now();
      const r = await drive();
      const windowMs = now() - t0;
      const u1 = await app.usage();
      let last = (await receivers.read()).delivered;
      const drainStart = now();
      while (expectEvents && now() - drainStart < DRAIN_MS) {
        await sleep(500);
        const cur = (await receivers.read()).delivered;
        if (cur === last) break;
        last = cur;
      }
      const drainMs = expectEvents ? now() - drainStart : 0;
      const got = await receivers.read();
      const usage = await app.usage();
      const p: Phase = {
        phase: name,
        tasksPerSecond: r.perSecond,
        taskFailures: r.failed,
        eventsDelivered: got.delivered,
        // Over the driving window and the drain: the rate at which the relay actually delivered.
        eventsPerSecond: got.delivered / ((windowMs + drainMs) / 1000),
        resultsDeliveredPerSecond: got.results / ((windowMs + drainMs) / 1000),
        drainMs,
        latency: got.latency,
        rssBytes: usage.memory.rss,
        // Tether's own CPU (main and database threads) over the driving window, per task completed.
        cpuMsPerTask: (u1.cpu.user + u1.cpu.system - u0.cpu.user - u0.cpu.system) / 1000 / Math.max(1, r.perSecond * (windowMs / 1000)),
        firstError: r.firstError,
      };
      phases.push(p);
      log(
        `${name}: ${rate(p.tasksPerSecond)} tasks, ${got.delivered} events (${rate(p.eventsPerSecond)}), p99 ${ms(p.latency.p99)}, RSS ${mib(p.rssBytes)}` +
          `${r.failed ? `, ${r.failed} task failures (${r.firstError})` : ""}`,
      );
      return p;
    };

    await phase("no subscription", false);
    for (let i = 0; i < SUBSCRIPTIONS; i++) {
      await hooks.createWebhook({
        webhookId: `bench-${i}`,
        webhook: { url: receivers.url(i), eventTypes: ["task.state_changed"] },
      });
    }
    const alive = await phase(`${SUBSCRIPTIONS} subscriptions, all alive`, true);
    const dead = await deadEndpoint(DEAD);
    cleanups.push(async () => dead.close());
    await hooks.updateWebhook({ webhook: { name: "webhooks/bench-0", url: dead.url }, updateMask: { paths: ["url"] } });
    const oneDead = await phase(`${SUBSCRIPTIONS} subscriptions, one dead (${DEAD === "refuse" ? "refusing connections" : "hanging"})`, true);

    // The bare baseline: the same receiver, the same body size, a plain HTTPS client.
    const body = Buffer.from(
      JSON.stringify({ id: crypto.randomUUID(), type: "task.state_changed", time: new Date().toISOString(), task: { state: "SUCCEEDED" } }).padEnd(700),
    );
    const bare = await bareClient(receivers.url(0), pki.caPem, body, 8 * SUBSCRIPTIONS, Math.min(5, SECONDS));
    log(`bare HTTPS client: ${rate(bare.perSecond)} requests, p99 ${ms(bare.latency.p99)} (${bare.concurrency} in flight)`);

    // --- Report ----------------------------------------------------------------------------------
    console.log(
      `\n${table(
        ["phase", "tasks/s", "Tether CPU/task", "events delivered", "events/s", "task results delivered/s", "delivery p50", "p99", "max", "Tether RSS"],
        phases.map((p) => [
          p.phase,
          rate(p.tasksPerSecond),
          `${p.cpuMsPerTask.toFixed(2)} ms`,
          String(p.eventsDelivered),
          rate(p.eventsPerSecond),
          rate(p.resultsDeliveredPerSecond),
          ms(p.latency.p50),
          ms(p.latency.p99),
          ms(p.latency.max),
          mib(p.rssBytes),
        ]),
      )}`,
    );
    const bare0 = phases[0]!;
    const aimEvents = AIM_RESULTS_PER_S * SUBSCRIPTIONS;
    const verdict = (ok: boolean) => (ok ? "met" : "MISSED");
    const lines = [
      `task throughput, 10 subscriptions vs none (cost of the outbox triggers and the relay on the task path): ${rate(alive.tasksPerSecond)} vs ${rate(bare0.tasksPerSecond)} = ${((alive.tasksPerSecond / bare0.tasksPerSecond) * 100).toFixed(0)} %` +
        ` (Tether CPU per task ${alive.cpuMsPerTask.toFixed(2)} vs ${bare0.cpuMsPerTask.toFixed(2)} ms, deliveries included)`,
      `aim ${rate(AIM_RESULTS_PER_S)} task results fanned out to ${SUBSCRIPTIONS} subscriptions (${rate(aimEvents)} result deliveries): ${rate(alive.resultsDeliveredPerSecond * SUBSCRIPTIONS)} result deliveries = ${((alive.resultsDeliveredPerSecond * SUBSCRIPTIONS * 100) / aimEvents).toFixed(1)} % of the aim — ${verdict(alive.resultsDeliveredPerSecond * SUBSCRIPTIONS >= aimEvents)} (bounded here by ${rate(bare0.tasksPerSecond)} tasks/s on this machine with no subscription at all)`,
      `all events (every state): ${rate(alive.eventsPerSecond)} delivered vs ${rate(bare.perSecond)} by a bare HTTPS client on the same receiver = ${((alive.eventsPerSecond / bare.perSecond) * 100).toFixed(0)} % of the bare rate`,
      `delivery p99 (event time → receiver) ≤ ${P99_AIM_MS} ms: ${ms(alive.latency.p99)} all alive, ${ms(oneDead.latency.p99)} with one dead — ${verdict(alive.latency.p99 <= P99_AIM_MS && oneDead.latency.p99 <= P99_AIM_MS)}`,
      `a dead endpoint does not slow the task path: ${rate(oneDead.tasksPerSecond)} tasks with one dead vs ${rate(alive.tasksPerSecond)} all alive = ${((oneDead.tasksPerSecond / alive.tasksPerSecond) * 100).toFixed(0)} % — ${verdict(oneDead.tasksPerSecond >= 0.9 * alive.tasksPerSecond)} (aim: ≥ 90 %)`,
      `one dead endpoint: the 9 live ones got ${rate(oneDead.eventsPerSecond)} vs ${rate((alive.eventsPerSecond * (SUBSCRIPTIONS - 1)) / SUBSCRIPTIONS)} (9/10 of all alive); Tether RSS ${mib(oneDead.rssBytes)} vs ${mib(alive.rssBytes)} — ` +
        `${verdict(oneDead.rssBytes <= alive.rssBytes * 1.25)} (aim: within 25 %)`,
    ];
    console.log(`\n${lines.join("\n")}`);
    await writeResults("events", {
      commit: gitDescribe(),
      node: process.version,
      cpus: cpus().length,
      devices: DEVICES,
      seconds: SECONDS,
      concurrency: CONCURRENCY,
      dead: DEAD,
      phases,
      bare: { perSecond: bare.perSecond, latency: bare.latency, concurrency: bare.concurrency },
      processErrors,
    });
  } finally {
    await cleanups.run();
  }
  if (processErrors.length > 0) console.error(`\n${processErrors.length} uncaught error(s) during the run:\n${processErrors.join("\n\n")}`);
}

runBench(main);
