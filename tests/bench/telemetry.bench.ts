/**
 * Telemetry benchmark: how many samples per second does Tether STORE, end to end, and how fast is
 * a day-long aggregate query?
 *
 *   npm run bench:telemetry                          # 100 devices, 10 s per phase (~3 min)
 *   BENCH_DEVICES=20 BENCH_SECONDS=3 BENCH_QUERY_ROWS=1000000 npm run bench:telemetry
 *
 * An in-process Tether (startApp, ephemeral ports, temp dir, silent logs) runs against a REAL
 * PostgreSQL: a fresh database on the local server (tests/helpers/postgres.ts, TEST_POSTGRES_URL)
 * passed as DATABASE_URL. Simulated devices are real mqtt.js clients with device certificates from
 * the stack's CA, in a worker thread, publishing binary Uplink{TelemetryBatch} on their own `up`
 * topic with QoS 1 through the embedded broker.
 *
 * Phases (each: publish for BENCH_SECONDS, then wait until everything arrived):
 *   (a) raw MQTT QoS 1 baseline: the same payloads and number of clients → one subscriber client
 *   (1) one sample per Uplink envelope, (2) BENCH_BATCH (100) samples per envelope;
 *       stored = `tether_telemetry_samples_stored_total`, rate = sent ÷ (first publish → stored = sent)
 *   (b) raw COPY baseline: the same number of rows as (2), COPY FROM STDIN into a table shaped like
 *       `telemetry` with the same primary key
 *   (q) QueryTelemetry, 24 h in 1-minute buckets over BENCH_QUERY_ROWS rows of one device, from the
 *       rollups (rebuilt for the loaded rows) and, for comparison, from the raw samples
 *   (p) optional: (1) and (2) again on the embedded PGlite
 * Prints figures and `ratio=` lines, writes tests/bench/results/telemetry-latest.json; never fails
 * on timing (exit code 0 unless the benchmark itself breaks).
 *
 * Environment: BENCH_DEVICES (100), BENCH_SECONDS per phase (10), BENCH_BATCH samples per envelope
 * (100), BENCH_WINDOW QoS 1 publishes in flight per client (4), BENCH_BACKLOG most samples between
 * publish and arrival (50000; 0 = open loop), BENCH_QUERY_ROWS (10000000), BENCH_QUERY_RUNS (5),
 * BENCH_COPY_ROWS cap (3000000), BENCH_PGLITE (1; 0 skips), BENCH_PGLITE_SECONDS (min(5, seconds)),
 * BENCH_STALL_SECONDS (20: give up waiting when nothing more arrives for this long), BENCH_LOG_LEVEL
 * (Tether's pino level, default silent; logs go to stdout),
 * TEST_POSTGRES_URL (postgres://postgres@127.0.0.1:5432/postgres).
 */
import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import path from "node:path";
import type { EventLoopUtilization } from "node:perf_hooks";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { type Client, createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import mqtt from "mqtt";
import postgres from "postgres";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { Aggregation } from "../../gen/tether/v1/telemetry_pb.js";
import { TelemetryService } from "../../gen/tether/v1/telemetry_service_pb.js";
import { type App, startApp } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { TEST_SIGNING_KEY_SECRET } from "../helpers/stack.js";
import { createLogger } from "../../src/log.js";
import { ensureDevPki, issueServiceCertificate } from "../../src/pki/dev-pki.js";
import { createTelemetryStore } from "../../src/store/telemetry-store.js";
import { freshDatabase } from "../helpers/postgres.js";
import { cpuMeter, eluMeter, type LatencySummary, mapLimit, mib, ms, now, rate, sleep, summarize, table } from "./lib/stats.js";
import { epochMs, type PublisherSide, type RunRequest, type RunResult, sampleValue, startPublisherSide } from "./lib/telemetry-publishers.js";
import { createCleanups, envNumber, gitDescribe, recordProcessErrors, runBench, writeResults } from "./lib/harness.js";

// ---------------------------------------------------------------------------------------------
// Configuration

const env = process.env;
const DEVICES = Math.floor(envNumber("BENCH_DEVICES", 100, 1));
const SECONDS = envNumber("BENCH_SECONDS", 10, 0.5);
const BATCH = Math.floor(envNumber("BENCH_BATCH", 100, 1));
const WINDOW = Math.floor(envNumber("BENCH_WINDOW", 4, 1));
const BACKLOG = Math.floor(envNumber("BENCH_BACKLOG", 50_000, 0));
const QUERY_ROWS = Math.floor(envNumber("BENCH_QUERY_ROWS", 10_000_000, 0));
const QUERY_RUNS = Math.floor(envNumber("BENCH_QUERY_RUNS", 5, 1));
const COPY_ROWS_CAP = Math.floor(envNumber("BENCH_COPY_ROWS", 3_000_000, 1));
const PGLITE = env.BENCH_PGLITE !== "0";
const PGLITE_SECONDS = envNumber("BENCH_PGLITE_SECONDS", Math.min(5, SECONDS), 0.5);
const STALL_MS = envNumber("BENCH_STALL_SECONDS", 20, 1) * 1000;
const WARMUP_SECONDS = Math.min(1, SECONDS);
const RATIO_AIM = 0.5;
const DEVICE_PREFIX = "bench-tm";
const RAW_PREFIX = "tether-bench/v1";
const QUERY_DEVICE = "bench-query";
const QUERY_METRIC = "bench_query";
const STORED = "tether_telemetry_samples_stored_total";
const DAY_MS = 86_400_000;

const processErrors = recordProcessErrors();

const T0 = now();
const LOAD_AT_START = loadavg();
const log = (msg: string) => console.log(`[${((now() - T0) / 1000).toFixed(1).padStart(5)} s] ${msg}`);
const int = (n: number) => Math.round(n).toLocaleString("en-US");

// ---------------------------------------------------------------------------------------------
// Measuring

/** CPU time of every `postgres` process on this machine (server + backends), ms; undefined if /proc is unreadable. */
function postgresCpuMs(): number | undefined {
  try {
    let ticks = 0;
    for (const pid of readdirSync("/proc")) {
      if (!/^\d+$/.test(pid)) continue;
      let stat: string;
      try {
        stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      } catch {
        continue;
      }
      const close = stat.lastIndexOf(")");
      if (!stat.slice(stat.indexOf("(") + 1, close).startsWith("postgres")) continue;
      const fields = stat.slice(close + 2).split(" ");
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
    }
    return (ticks * 1000) / 100; // CLK_TCK is 100 on Linux
  } catch {
    return undefined;
  }
}

interface FlowResult {
  name: string;
  /** Samples published and acknowledged (PUBACK) by the broker. */
  sent: number;
  messages: number;
  /** Samples that arrived at the far end (stored by Tether / received by the subscriber). */
  arrived: number;
  lost: number;
  /** First publish → the far end has everything, s. */
  seconds: number;
  /** arrived ÷ seconds (samples/s, end to end). */
  perSecond: number;
  /** Samples acknowledged by the broker per second over the publishing window. */
  publishedPerSecond: number;
  /** Last PUBACK → everything arrived, ms (the backlog left at the end of the window). */
  tailMs: number;
  payloadBytes: { min: number; max: number };
  failedPublishes: number;
  firstError?: string;
  creditWaitMs: number;
  mainThreadElu: number;
  publisherThreadElu: number;
  processCpuMs: number;
  postgresCpuMs?: number;
  rssPeak: number;
  counters: Record<string, number>;
  rowsInDatabase?: number;
  /** The phase on the monotonic clock (µs), the clock of `node --cpu-prof` profiles. */
  window: { fromUs: number; toUs: number };
}

const monoUs = () => Number(process.hrtime.bigint() / 1000n);

function counterDelta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) {
    const d = v - (before[k] ?? 0);
    if (d !== 0 && k.startsWith("tether_")) out[k] = d;
  }
  return out;
}

/**
 * Runs one publishing phase and waits until the far end has everything (or nothing more arrived
 * for STALL_MS). `arrivedCount` is polled every 5 ms; its changes are reported to the publishers
 * (flow control) and timestamped, so "everything arrived" is known to within one poll.
 */
async function flow(name: string, pubs: PublisherSide, req: RunRequest, arrivedCount: () => number, app?: App): Promise<FlowResult> {
  const base = arrivedCount();
  const countersBefore = app?.counters.snapshot() ?? {};
  const history: Array<[number, number]> = [];
  let last = 0;
  let lastChange = epochMs();
  let rssPeak = process.memoryUsage.rss();
  let ticks = 0;
  const ticker = setInterval(() => {
    const d = arrivedCount() - base;
    if (d !== last) {
      last = d;
      lastChange = epochMs();
      history.push([lastChange, d]);
      pubs.progress(d);
    }
    if (++ticks % 20 === 0) rssPeak = Math.max(rssPeak, process.memoryUsage.rss());
  }, 5);
  const elu = eluMeter();
  const cpu = cpuMeter();
  const pub0: EventLoopUtilization = pubs.elu();
  const pg0 = postgresCpuMs();
  const fromUs = monoUs();
  let r: RunResult;
  try {
    r = await pubs.run(req);
    while (last < r.samples && epochMs() - lastChange < STALL_MS) await sleep(5);
  } finally {
    clearInterval(ticker);
  }
  const final = arrivedCount() - base;
  const pg1 = postgresCpuMs();
  const doneAt = history.find(([, d]) => d >= r.samples)?.[0] ?? lastChange;
  const seconds = (doneAt - r.firstPublishAt) / 1000;
  const arrived = Math.min(final, r.samples);
  return {
    name,
    sent: r.samples,
    messages: r.messages,
    arrived: final,
    lost: r.samples - arrived,
    seconds,
    perSecond: arrived / seconds,
    publishedPerSecond: r.samples / ((r.lastPubackAt - r.firstPublishAt) / 1000),
    tailMs: doneAt - r.lastPubackAt,
    payloadBytes: r.payloadBytes,
    failedPublishes: r.failed,
    firstError: r.firstError,
    creditWaitMs: r.creditWaitMs,
    mainThreadElu: elu(),
    publisherThreadElu: pubs.elu(pub0).utilization,
    processCpuMs: cpu(),
    postgresCpuMs: pg0 !== undefined && pg1 !== undefined ? pg1 - pg0 : undefined,
    rssPeak,
    counters: app ? counterDelta(countersBefore, app.counters.snapshot()) : {},
    window: { fromUs, toUs: monoUs() },
  };
}

function printFlow(f: FlowResult): void {
  console.log(`\n## ${f.name}`);
  console.log(
    `   sent ${int(f.sent)} samples in ${int(f.messages)} messages (${f.payloadBytes.min === f.payloadBytes.max ? f.payloadBytes.min : `${f.payloadBytes.min}–${f.payloadBytes.max}`} B each), ` +
      `arrived ${int(f.arrived)}, lost ${int(f.lost)}${f.rowsInDatabase !== undefined ? `, rows in database ${int(f.rowsInDatabase)}` : ""}`,
  );
  console.log(
    `   end to end ${rate(f.perSecond)} (first publish → all arrived ${f.seconds.toFixed(2)} s; broker acked ${rate(f.publishedPerSecond)} while publishing; ` +
      `tail after the last PUBACK ${f.tailMs > 5 ? ms(f.tailMs) : "none (within the 5 ms poll)"})`,
  );
  if (f.failedPublishes) console.log(`   failed publishes: ${f.failedPublishes}, first: ${f.firstError}`);
  console.log(
    `   main thread busy ${(f.mainThreadElu * 100).toFixed(0)} %, publisher thread busy ${(f.publisherThreadElu * 100).toFixed(0)} %, ` +
      `process CPU ${(f.processCpuMs / 1000).toFixed(1)} s, PostgreSQL CPU ${f.postgresCpuMs === undefined ? "–" : `${(f.postgresCpuMs / 1000).toFixed(1)} s`}, ` +
      `publishers waited for credit ${(f.creditWaitMs / 1000 / Math.max(1, DEVICES * WINDOW)).toFixed(2)} s per lane, RSS peak ${mib(f.rssPeak)}`,
  );
  if (Object.keys(f.counters).length) console.log(`   Tether counters (delta): ${JSON.stringify(f.counters)}`);
}

// ---------------------------------------------------------------------------------------------
// Setup helpers

interface StartedApp {
  app: App;
  startMs: number;
  clients: { devices: Client<typeof DeviceService>; telemetry: Client<typeof TelemetryService> };
  sessions: Http2SessionManager;
}

async function startTether(dir: string, dataDir: string, databaseUrl: string | undefined): Promise<StartedApp> {
  const t = now();
  const config = loadConfig(
    {
      TETHER_PORT: "0",
      TETHER_MQTT_PORT: "0",
      TETHER_METRICS_PORT: "0",
      TETHER_DATA_DIR: dataDir,
      TETHER_CERTS_DIR: "certs",
      TETHER_SHUTDOWN_GRACE_MS: "2000",
      // A benchmark floods on purpose: no per-device uplink limit.
      TETHER_UPLINK_RATE_PER_S: "0",
      LOG_LEVEL: env.BENCH_LOG_LEVEL ?? "silent",
      // Production mode refuses to start without a signing-key secret.
      ...(databaseUrl ? { DATABASE_URL: databaseUrl, TETHER_SIGNING_KEY_SECRET: TEST_SIGNING_KEY_SECRET } : {}),
    },
    dir,
  );
  const app = await startApp(config, createLogger(config.logLevel));
  const startMs = now() - t;
  const pki = await ensureDevPki(app.certsDir);
  const sessions = new Http2SessionManager(`https://localhost:${app.apiPort}`, {}, { ca: pki.caPem, cert: pki.admin.certPem, key: pki.admin.keyPem });
  const transport = createGrpcTransport({ baseUrl: `https://localhost:${app.apiPort}`, sessionManager: sessions });
  return { app, startMs, sessions, clients: { devices: createClient(DeviceService, transport), telemetry: createClient(TelemetryService, transport) } };
}

async function registerDevices(s: StartedApp, ids: string[]): Promise<number> {
  const t = now();
  const create = (deviceId: string) => s.clients.devices.createDevice({ deviceId, device: { displayName: deviceId, kind: { case: "led", value: {} } } });
  // One call first opens the HTTP/2 session, so the concurrent ones do not all wait on its connect.
  await create(ids[0]!);
  await mapLimit(ids.slice(1), 16, create);
  return now() - t;
}

// ---------------------------------------------------------------------------------------------
// Baseline (b): raw COPY

interface CopyResult {
  rows: number;
  seconds: number;
  perSecond: number;
  postgresCpuMs?: number;
}

/** COPY FROM STDIN of `rows` rows shaped like the batched phase's (same devices, metric, time pattern). */
async function copyBaseline(sql: postgres.Sql, ids: string[], rows: number, timeBaseMs: number): Promise<CopyResult> {
  await sql`DROP TABLE IF EXISTS telemetry_copy`;
  await sql`CREATE TABLE telemetry_copy (LIKE telemetry INCLUDING DEFAULTS)`;
  await sql`ALTER TABLE telemetry_copy ADD PRIMARY KEY (device_id, metric, time, tags_key)`;
  // Envelopes of BATCH consecutive samples, devices in turn: the order Tether receives them in.
  function* lines(): Generator<string> {
    const next = new Array<number>(ids.length).fill(0);
    let produced = 0;
    let chunk = "";
    for (let d = 0; produced < rows; d = (d + 1) % ids.length) {
      const id = ids[d]!;
      for (let k = 0; k < BATCH && produced < rows; k++, produced++) {
        const n = next[d]!++;
        chunk += `${id}\tbench_batch\t${new Date(timeBaseMs + n).toISOString()}\t\t${sampleValue(n)}\n`;
      }
      if (chunk.length >= 64 * 1024) {
        yield chunk;
        chunk = "";
      }
    }
    if (chunk) yield chunk;
  }
  const pg0 = postgresCpuMs();
  const t = now();
  const writable = await sql`COPY telemetry_copy (device_id, metric, time, tags_key, value) FROM STDIN`.writable();
  await pipeline(Readable.from(lines()), writable);
  const seconds = (now() - t) / 1000;
  const pg1 = postgresCpuMs();
  const [{ n }] = (await sql`SELECT count(*)::int AS n FROM telemetry_copy`) as unknown as [{ n: number }];
  if (n !== rows) throw new Error(`COPY baseline: ${n} rows in telemetry_copy, expected ${rows}`);
  await sql`DROP TABLE telemetry_copy`;
  return { rows, seconds, perSecond: rows / seconds, postgresCpuMs: pg0 !== undefined && pg1 !== undefined ? pg1 - pg0 : undefined };
}

// ---------------------------------------------------------------------------------------------
// Query latency

interface QueryResult {
  rows: number;
  loadSeconds: number;
  analyzeSeconds: number;
  range: { start: string; end: string };
  points: number;
  countSum: number;
  firstMs: number;
  latency: LatencySummary;
  /** Rebuilding the rollups of the loaded rows, s. */
  rollupSeconds: number;
  /** The rollup query through the store alone (no gRPC), ms. */
  rollupSqlMs: number[];
  /** The same query from raw samples only (no rollups), ms. */
  rawMs: number[];
  /** The raw answer equals the rollup answer (values compared as JSON). */
  rawEqual: boolean;
  sqlOnlyMs: number[];
  error?: string;
}

async function queryPhase(s: StartedApp, sql: postgres.Sql): Promise<QueryResult> {
  const end = Math.floor(Date.now() / 60_000) * 60_000;
  const start = end - DAY_MS;
  const stepUs = Math.floor((DAY_MS * 1000) / QUERY_ROWS);
  // Partitions first, through the store's own code (the load below bypasses the writer).
  const store = createTelemetryStore(sql);
  await store.ensurePartitions(new Date(start), new Date(end));
  const t = now();
  const chunk = 1_000_000;
  const ranges: Array<[number, number]> = [];
  for (let a = 0; a < QUERY_ROWS; a += chunk) ranges.push([a, Math.min(QUERY_ROWS, a + chunk) - 1]);
  await mapLimit(ranges, 2, ([a, b]) =>
    sql.begin(async (tx) => {
      await tx`SET LOCAL synchronous_commit = off`;
      await tx`
        INSERT INTO telemetry (device_id, metric, time, tags_key, value)
        SELECT ${QUERY_DEVICE}, ${QUERY_METRIC}, ${new Date(start)}::timestamptz + (i * ${stepUs}::bigint) * interval '1 microsecond', '', (i % 1000) / 10.0
        FROM generate_series(${a}::bigint, ${b}::bigint) AS i`;
    }),
  );
  const loadSeconds = (now() - t) / 1000;
  // The rows went in around the writer, so their rollups are computed the way a bulk load's are.
  log(`loaded ${int(QUERY_ROWS)} rows for ${QUERY_DEVICE} in ${loadSeconds.toFixed(1)} s (${rate(QUERY_ROWS / loadSeconds)}); rollups …`);
  const tr = now();
  await store.rebuildRollups(new Date(start), new Date(end));
  const rollupSeconds = (now() - tr) / 1000;
  log(`rollups of the loaded rows rebuilt in ${rollupSeconds.toFixed(1)} s; ANALYZE …`);
  const t2 = now();
  await sql`ANALYZE telemetry`;
  await sql`ANALYZE telemetry_1m`;
  const analyzeSeconds = (now() - t2) / 1000;

  const req = {
    parent: `devices/${QUERY_DEVICE}`,
    metrics: [QUERY_METRIC],
    startTime: { seconds: BigInt(start / 1000), nanos: 0 },
    endTime: { seconds: BigInt(end / 1000), nanos: 0 },
    bucketWidth: { seconds: 60n, nanos: 0 },
    aggregation: Aggregation.AVG,
    pageSize: 2000,
  };
  const times: number[] = [];
  let points = 0;
  let countSum = 0;
  let firstMs = NaN;
  let error: string | undefined;
  try {
    for (let i = 0; i <= QUERY_RUNS; i++) {
      const q0 = now();
      const res = await s.clients.telemetry.queryTelemetry(req, { timeoutMs: 300_000 });
      const elapsed = now() - q0;
      if (i === 0) firstMs = elapsed;
      else times.push(elapsed);
      points = res.points.length;
      countSum = res.points.reduce((acc, p) => acc + Number(p.count), 0);
      if (res.nextPageToken) error = "the answer was paged (expected all buckets in one page)";
      log(`QueryTelemetry ${i === 0 ? "(first)" : `#${i}`}: ${ms(elapsed)}, ${points} points, ${int(countSum)} samples`);
    }
  } catch (err) {
    error = err instanceof Error ? err.message : String(err);
    log(`QueryTelemetry failed: ${error}`);
  }
  // The same statement straight on the database (no gRPC, no Tether), for comparison.
  // Without rollups: the same query from the raw samples, through the store (what QueryTelemetry ran before rollups).
  const rawQuery = {
    deviceId: QUERY_DEVICE,
    metrics: [QUERY_METRIC],
    start: new Date(start),
    end: new Date(end),
    bucketMs: 60_000,
    aggregation: Aggregation.AVG,
    limit: 2001,
  };
  const rawMs: number[] = [];
  let rawEqual = true;
  const viaRollups = await store.query(rawQuery);
  const rollupSqlMs: number[] = [];
  for (let i = 0; i < 3; i++) {
    const q0 = now();
    await store.query(rawQuery);
    rollupSqlMs.push(now() - q0);
  }
  for (let i = 0; i < 3; i++) {
    const q0 = now();
    const rows = await store.queryRaw(rawQuery);
    rawMs.push(now() - q0);
    // Counts and buckets must match exactly; AVG of arbitrary floats may differ in the last bits
    // (summation order), so values are compared to 1e-12 relative.
    if (i === 0)
      rawEqual =
        rows.length === viaRollups.length &&
        rows.every((r, k) => {
          const v = viaRollups[k]!;
          return r.count === v.count && r.time.getTime() === v.time.getTime() && Math.abs(r.value - v.value) <= 1e-12 * Math.max(1, Math.abs(r.value));
        });
  }
  const sqlOnlyMs: number[] = [];
  for (let i = 0; i < 2; i++) {
    const q0 = now();
    await sql`
      SELECT metric, date_bin(${"60000 milliseconds"}::interval, time, TIMESTAMPTZ '1970-01-01T00:00:00Z') AS bucket, avg(value) AS value, count(*)::int AS count
      FROM telemetry
      WHERE device_id = ${QUERY_DEVICE} AND time >= ${new Date(start)} AND time < ${new Date(end)} AND metric IN ${sql([QUERY_METRIC])}
      GROUP BY metric, bucket ORDER BY metric, bucket LIMIT 2001`;
    sqlOnlyMs.push(now() - q0);
  }
  return {
    rows: QUERY_ROWS,
    loadSeconds,
    analyzeSeconds,
    range: { start: new Date(start).toISOString(), end: new Date(end).toISOString() },
    points,
    countSum,
    firstMs,
    latency: summarize(times),
    rollupSeconds,
    rollupSqlMs,
    rawMs,
    rawEqual,
    sqlOnlyMs,
    error,
  };
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<void> {
  console.log(
    `# Tether telemetry benchmark — ${DEVICES} devices, ${SECONDS} s per phase, window ${WINDOW}/client, batch ${BATCH}, backlog ${BACKLOG || "unbounded"}, ` +
      `node ${process.version}, ${cpus().length} CPUs, load average ${loadavg()
        .map((l) => l.toFixed(2))
        .join(" ")}, commit ${gitDescribe()}`,
  );
  const dir = await mkdtemp(path.join(tmpdir(), "tether-bench-telemetry-"));
  const cleanups = createCleanups();
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const once = (fn: () => Promise<unknown>) => {
    let p: Promise<unknown> | undefined;
    return () => (p ??= fn());
  };

  try {
    // --- PostgreSQL + Tether -------------------------------------------------------------------
    const t = now();
    const db = await freshDatabase("tether_bench_telemetry");
    cleanups.push(() => db.drop());
    const sql = postgres(db.url, { max: 2, onnotice: () => {} });
    cleanups.push(() => sql.end({ timeout: 5 }));
    log(`fresh database ${new URL(db.url).pathname.slice(1)} in ${ms(now() - t)}`);

    const pgTether = await startTether(dir, "data", db.url);
    const stopPg = once(async () => {
      pgTether.sessions.abort();
      await pgTether.app.stop();
    });
    cleanups.push(stopPg);
    const app = pgTether.app;
    log(`tether started against PostgreSQL in ${ms(pgTether.startMs)} (api :${app.apiPort}, mqtt :${app.mqttPort}, ${dir})`);

    const ids = Array.from({ length: DEVICES }, (_, i) => `${DEVICE_PREFIX}-${i + 1}`);
    const registerMs = await registerDevices(pgTether, [...ids, QUERY_DEVICE]);
    log(`registered ${DEVICES + 1} devices through DeviceService in ${ms(registerMs)}`);

    const pubs = startPublisherSide();
    cleanups.push(() => pubs.stop());
    const mqttUrl = `mqtts://127.0.0.1:${app.mqttPort}`;
    // Sample times start 12 h back (inside the partitions Tether keeps ahead, far from the age limit)
    // and advance 1 ms per sample, per device and metric: no two samples share an identity.
    const timeBaseMs = Date.now() - 12 * 3_600_000;
    const dev = await pubs.connect({ group: "devices", url: mqttUrl, certsDir: app.certsDir, ids, identity: "device", connectConcurrency: 25, timeBaseMs });
    log(`connected ${dev.connected} device clients (device certificates from the stack's CA) in ${ms(dev.ms)}`);
    const rawIds = Array.from({ length: DEVICES }, (_, i) => `bench-raw-${i + 1}`);
    const raw = await pubs.connect({
      group: "raw",
      url: mqttUrl,
      certsDir: app.certsDir,
      ids: rawIds,
      identity: "service",
      rawPrefix: RAW_PREFIX,
      connectConcurrency: 25,
      timeBaseMs,
    });
    log(`connected ${raw.connected} raw-baseline clients (service certificate CN "tether") in ${ms(raw.ms)}`);

    // The baseline subscriber: a service client like Tether's bridge, on this (Tether's) thread.
    const pki = await ensureDevPki(app.certsDir);
    const subCert = await issueServiceCertificate(pki.ca, "tether");
    const subscriber = await mqtt.connectAsync(mqttUrl, {
      clientId: `bench-sub-${process.pid}`,
      ca: pki.caPem,
      cert: subCert.certPem,
      key: subCert.keyPem,
      protocolVersion: 4,
      clean: true,
      reconnectPeriod: 0,
    });
    cleanups.push(() => subscriber.endAsync(true));
    let received = 0;
    subscriber.on("message", () => received++);
    await subscriber.subscribeAsync(`${RAW_PREFIX}/+/up`, { qos: 1 });
    const setupMs = now() - T0;

    const stored = () => app.counters.get(STORED);
    const base = { seconds: SECONDS, window: WINDOW, backlog: BACKLOG };
    const rowsOf = async (metric: string) => {
      const [{ n }] = (await sql`SELECT count(*)::int AS n FROM telemetry WHERE metric = ${metric}`) as unknown as [{ n: number }];
      return n;
    };

    // --- Warm-up (JIT, pools, partitions) ---------------------------------------------------------
    const w = { ...base, seconds: WARMUP_SECONDS };
    await flow("warm-up raw", pubs, { ...w, group: "raw", samplesPerMessage: 1, metric: "bench_warmup" }, () => received);
    await flow("warm-up single", pubs, { ...w, group: "devices", samplesPerMessage: 1, metric: "bench_warmup" }, stored, app);
    const wu = await flow("warm-up batched", pubs, { ...w, group: "devices", samplesPerMessage: BATCH, metric: "bench_warmup_batch" }, stored, app);
    log(`warm-up done (last: ${rate(wu.perSecond)}, lost ${wu.lost})`);

    // --- (a) raw MQTT, (1) single, (2) batched ----------------------------------------------------
    log("baseline (a): raw MQTT QoS 1 …");
    const rawMqtt = await flow(
      `baseline (a): raw MQTT QoS 1 through the embedded broker — ${DEVICES} clients × ${WINDOW} in flight → 1 subscriber, the single-sample Uplink payload on ${RAW_PREFIX}/{id}/up`,
      pubs,
      { ...base, group: "raw", samplesPerMessage: 1, metric: "bench_single" },
      () => received,
    );
    printFlow(rawMqtt);

    log("shape (1): one sample per message …");
    const single = await flow(
      `shape (1): PostgreSQL — 1 sample per Uplink{TelemetryBatch}, ${DEVICES} devices × ${WINDOW} in flight, QoS 1 on tether/v1/devices/{id}/up`,
      pubs,
      { ...base, group: "devices", samplesPerMessage: 1, metric: "bench_single" },
      stored,
      app,
    );
    single.rowsInDatabase = await rowsOf("bench_single");
    printFlow(single);

    log(`shape (2): ${BATCH} samples per message …`);
    const batched = await flow(
      `shape (2): PostgreSQL — ${BATCH} samples per Uplink{TelemetryBatch}, ${DEVICES} devices × ${WINDOW} in flight, QoS 1`,
      pubs,
      { ...base, group: "devices", samplesPerMessage: BATCH, metric: "bench_batch" },
      stored,
      app,
    );
    batched.rowsInDatabase = await rowsOf("bench_batch");
    printFlow(batched);
    await pubs.close("raw");

    // --- (b) raw COPY ------------------------------------------------------------------------------
    const copyRows = Math.max(1, Math.min(COPY_ROWS_CAP, batched.sent));
    log(`baseline (b): COPY of ${int(copyRows)} rows …`);
    const copy = await copyBaseline(sql, ids, copyRows, timeBaseMs);
    console.log(`\n## baseline (b): raw COPY FROM STDIN (postgres.js .writable()) into telemetry_copy (columns and primary key of telemetry, not partitioned)`);
    console.log(
      `   ${int(copy.rows)} rows in ${copy.seconds.toFixed(2)} s = ${rate(copy.perSecond)}, PostgreSQL CPU ${copy.postgresCpuMs === undefined ? "–" : `${(copy.postgresCpuMs / 1000).toFixed(1)} s`}`,
    );

    // --- (q) query latency ---------------------------------------------------------------------------
    let query: QueryResult | undefined;
    if (QUERY_ROWS > 0) {
      log(`query: loading ${int(QUERY_ROWS)} rows over 24 h for ${QUERY_DEVICE} …`);
      query = await queryPhase(pgTether, sql);
      console.log(`\n## QueryTelemetry: 24 h, 1-minute buckets, AVG, over ${int(query.rows)} rows of one device and metric (gRPC, admin certificate)`);
      console.log(`   load ${query.loadSeconds.toFixed(1)} s (INSERT … SELECT generate_series, 2 connections), ANALYZE ${query.analyzeSeconds.toFixed(1)} s`);
      console.log(
        `   first ${ms(query.firstMs)}; then ${query.latency.count} runs: p50 ${ms(query.latency.p50)}  max ${ms(query.latency.max)}; ${query.points} points covering ${int(query.countSum)} samples` +
          `${query.countSum !== query.rows ? ` (EXPECTED ${int(query.rows)})` : ""}`,
      );
      console.log(`   rollups rebuilt for the loaded rows in ${query.rollupSeconds.toFixed(1)} s (the writer maintains them for what it stores)`);
      console.log(`   the same query through the store, without gRPC: ${query.rollupSqlMs.map(ms).join(", ")}`);
      console.log(
        `   without rollups (raw samples, store.queryRaw): ${query.rawMs.map(ms).join(", ")}; the answers are ${query.rawEqual ? "equal (counts exactly, values to 1e-12)" : "DIFFERENT"}`,
      );
      console.log(`   the raw SQL straight on PostgreSQL: ${query.sqlOnlyMs.map(ms).join(", ")}`);
      if (query.error) console.log(`   error: ${query.error}`);
    }
    const pgMem = process.memoryUsage();
    const publisherStats = await pubs.stats();

    // --- (p) PGlite -----------------------------------------------------------------------------------
    await pubs.close("devices");
    await subscriber.endAsync(true);
    await stopPg();
    let pglite: { startMs: number; single: FlowResult; batched: FlowResult; rss: number } | undefined;
    if (PGLITE) {
      log("embedded PGlite: starting a second Tether (same certificates) …");
      const lite = await startTether(dir, "data-pglite", undefined);
      const stopLite = once(async () => {
        lite.sessions.abort();
        await lite.app.stop();
      });
      cleanups.push(stopLite);
      log(`tether started on PGlite in ${ms(lite.startMs)}`);
      await registerDevices(lite, ids);
      const c = await pubs.connect({
        group: "pglite",
        url: `mqtts://127.0.0.1:${lite.app.mqttPort}`,
        certsDir: lite.app.certsDir,
        ids,
        identity: "device",
        connectConcurrency: 25,
        timeBaseMs,
      });
      log(`connected ${c.connected} device clients in ${ms(c.ms)}`);
      const liteStored = () => lite.app.counters.get(STORED);
      const lb = { ...base, seconds: PGLITE_SECONDS, group: "pglite" };
      await flow("warm-up", pubs, { ...lb, seconds: WARMUP_SECONDS, samplesPerMessage: BATCH, metric: "bench_warmup" }, liteStored, lite.app);
      log("PGlite shape (1) …");
      const s1 = await flow(
        `shape (1) on embedded PGlite — 1 sample per message, ${PGLITE_SECONDS} s`,
        pubs,
        { ...lb, samplesPerMessage: 1, metric: "bench_single" },
        liteStored,
        lite.app,
      );
      printFlow(s1);
      log("PGlite shape (2) …");
      const s2 = await flow(
        `shape (2) on embedded PGlite — ${BATCH} samples per message, ${PGLITE_SECONDS} s`,
        pubs,
        { ...lb, samplesPerMessage: BATCH, metric: "bench_batch" },
        liteStored,
        lite.app,
      );
      printFlow(s2);
      pglite = { startMs: lite.startMs, single: s1, batched: s2, rss: process.memoryUsage().rss };
      await pubs.close("pglite");
      await stopLite();
    }

    // --- Summary ------------------------------------------------------------------------------------
    const ratio = (a: number, b: number) => a / b;
    const ratios = {
      singleVsRawMqtt: { stored: single.perSecond, baseline: rawMqtt.perSecond, ratio: ratio(single.perSecond, rawMqtt.perSecond), aim: RATIO_AIM },
      batchedVsCopy: { stored: batched.perSecond, baseline: copy.perSecond, ratio: ratio(batched.perSecond, copy.perSecond), aim: RATIO_AIM },
      ...(pglite && {
        pgliteSingleVsRawMqtt: { stored: pglite.single.perSecond, baseline: rawMqtt.perSecond, ratio: ratio(pglite.single.perSecond, rawMqtt.perSecond) },
        pgliteBatchedVsCopy: { stored: pglite.batched.perSecond, baseline: copy.perSecond, ratio: ratio(pglite.batched.perSecond, copy.perSecond) },
      }),
    };

    console.log(`\n# Summary (${DEVICES} devices, ${SECONDS} s per phase${pglite ? `, PGlite ${PGLITE_SECONDS} s` : ""})\n`);
    const row = (f: FlowResult, what: string) => [what, rate(f.perSecond), int(f.sent), int(f.arrived), int(f.lost), `${f.seconds.toFixed(2)} s`];
    const rows = [
      row(rawMqtt, "(a) raw MQTT QoS 1, msg = sample"),
      row(single, "(1) Tether/PostgreSQL, 1 sample/msg"),
      row(batched, `(2) Tether/PostgreSQL, ${BATCH} samples/msg`),
      [`(b) raw COPY into telemetry_copy`, rate(copy.perSecond), int(copy.rows), int(copy.rows), "0", `${copy.seconds.toFixed(2)} s`],
      ...(pglite ? [row(pglite.single, "(1) Tether/PGlite, 1 sample/msg"), row(pglite.batched, `(2) Tether/PGlite, ${BATCH} samples/msg`)] : []),
    ];
    console.log(table(["what", "samples/s", "sent", "stored/received", "lost", "first publish → all"], rows));

    const verdict = (r: number) => (r >= RATIO_AIM ? "met" : "MISSED");
    console.log(`\nRatios (aim ≥ ${RATIO_AIM})`);
    console.log(
      `  single-sample stored ÷ raw MQTT QoS 1 = ${rate(single.perSecond)} ÷ ${rate(rawMqtt.perSecond)} ratio=${ratios.singleVsRawMqtt.ratio.toFixed(2)} → ${verdict(ratios.singleVsRawMqtt.ratio)}`,
    );
    console.log(
      `  batched stored ÷ raw COPY = ${rate(batched.perSecond)} ÷ ${rate(copy.perSecond)} ratio=${ratios.batchedVsCopy.ratio.toFixed(2)} → ${verdict(ratios.batchedVsCopy.ratio)}`,
    );
    if (pglite && ratios.pgliteSingleVsRawMqtt && ratios.pgliteBatchedVsCopy) {
      console.log(
        `  (PGlite, for reference) single ÷ raw MQTT ratio=${ratios.pgliteSingleVsRawMqtt.ratio.toFixed(2)}; batched ÷ PostgreSQL COPY ratio=${ratios.pgliteBatchedVsCopy.ratio.toFixed(2)}`,
      );
    }
    if (query)
      console.log(
        `  QueryTelemetry 24 h / 1 min over ${int(query.rows)} rows: p50 ${ms(query.latency.p50)}, max ${ms(query.latency.max)} (first ${ms(query.firstMs)}) → ${query.latency.p50 <= 50 ? "met" : "MISSED"} (aim p50 ≤ 50 ms); without rollups ${ms(Math.min(...query.rawMs))} best of ${query.rawMs.length}`,
      );
    const lost = [single, batched, ...(pglite ? [pglite.single, pglite.batched] : [])].reduce((a, f) => a + f.lost, 0);
    console.log(`  samples lost: ${lost}${lost === 0 ? " (none)" : " (LOSS)"}`);
    console.log(`\nNotes`);
    console.log(
      `  - (a) uses the same payloads, QoS, window and number of clients as (1), but service-certificate clients on ${RAW_PREFIX}/{id}/up: every topic a device may\n` +
        `    publish to (up, up/json, presence, metrics/+) is consumed by Tether's bridge, and even a refused plain metric costs Tether a devices UPDATE.`,
    );
    const pubBusy = (rawMqtt.publisherThreadElu * 100).toFixed(0);
    const mainBusy = (rawMqtt.mainThreadElu * 100).toFixed(0);
    if (rawMqtt.publisherThreadElu > 0.9 && rawMqtt.mainThreadElu > 0.9) {
      console.log(
        `  - (a) saturated both the publisher thread (${pubBusy} %) and the broker/subscriber thread (${mainBusy} %): on ${cpus().length} cores it is the machine's MQTT ceiling.`,
      );
    } else if (rawMqtt.publisherThreadElu > 0.9) {
      console.log(`  - (a) was limited by the publisher thread (${pubBusy} % busy, one core); the broker/subscriber thread was ${mainBusy} % busy.`);
    }
    if (BACKLOG > 0)
      console.log(
        `  - flow control: publishers start nothing new while more than ${int(BACKLOG)} samples are between publish and arrival (BENCH_BACKLOG=0: open loop).`,
      );
    console.log(
      `  - load average at the end ${loadavg()
        .map((l) => l.toFixed(2))
        .join(" ")} on ${cpus().length} CPUs: other work on this machine skews every figure.`,
    );
    if (processErrors.length)
      console.log(`\n!! ${processErrors.length} uncaught error(s) during the run; figures after the first are suspect. First:\n${processErrors[0]}`);
    const mem = process.memoryUsage();
    console.log(
      `Memory: rss ${mib(pgMem.rss)} after the PostgreSQL phases (peak during them ${mib(Math.max(single.rssPeak, batched.rssPeak, rawMqtt.rssPeak))})` +
        `${pglite ? `, ${mib(pglite.rss)} after the PGlite phases` : ""}, ${mib(mem.rss)} now; main heap ${mib(mem.heapUsed)} / ${mib(mem.heapTotal)}; ` +
        `publisher thread heap ${mib(publisherStats.heapUsed)} / ${mib(publisherStats.heapTotal)}`,
    );

    const results = {
      benchmark: "telemetry",
      date: new Date().toISOString(),
      commit: gitDescribe(),
      node: process.version,
      cpus: cpus().length,
      loadAverageAtStart: LOAD_AT_START,
      loadAverageAtEnd: loadavg(),
      config: {
        devices: DEVICES,
        secondsPerPhase: SECONDS,
        batch: BATCH,
        window: WINDOW,
        backlog: BACKLOG,
        queryRows: QUERY_ROWS,
        queryRuns: QUERY_RUNS,
        copyRowsCap: COPY_ROWS_CAP,
        pglite: PGLITE,
        pgliteSeconds: PGLITE_SECONDS,
      },
      setup: { tetherStartMs: pgTether.startMs, registerMs, deviceConnectMs: dev.ms, rawConnectMs: raw.ms, totalMs: setupMs },
      postgres: { rawMqtt, single, batched, copy, query: query ?? null },
      pglite: pglite ?? null,
      ratios,
      processErrors,
      memory: {
        rssAfterPostgres: pgMem.rss,
        rssPeakPostgresPhases: Math.max(single.rssPeak, batched.rssPeak, rawMqtt.rssPeak),
        rssAfterPglite: pglite?.rss ?? null,
        heapUsed: mem.heapUsed,
        publisherHeapUsed: publisherStats.heapUsed,
      },
      wallSeconds: (now() - T0) / 1000,
    };
    await writeResults("telemetry", results);
  } finally {
    const t = now();
    await cleanups.run();
    log(`stopped clients and Tether, dropped the database, in ${ms(now() - t)}; total ${((now() - T0) / 1000).toFixed(0)} s`);
  }
}

runBench(main);
