/**
 * Scheduler benchmark: 10,000 rules due in the same second (burst), and 10,000 rules due across
 * one minute (spread: 1/60 of them each second), against a real PostgreSQL.
 *
 *   npm run bench:scheduler                  # 10,000 rules on 1,000 LEDs, with 1 and 3 schedulers, both phases
 *   BENCH_RULES=2000 BENCH_INSTANCES=1,2,4 BENCH_SCHEDULER_PHASES=spread npm run bench:scheduler
 *
 * Each configuration gets a fresh database (tests/helpers/postgres.ts, TEST_POSTGRES_URL), 1,000
 * devices and 10,000 rules created through the RuleService core (cron `S M H * * *` in UTC with a
 * start/end window, so each fires exactly once, all at the same instant T). Each scheduler runs in
 * its own worker thread with its own postgres.js pool, as separate replicas would. Then:
 *
 * - fire lag: occurrence time T → the task row committed QUEUED (seen by the scheduler right
 *   after COMMIT), p50/p90/p99/max over all tasks; and T → the task's create_time (the instant
 *   the transaction that inserted it took `now`). In the spread phase each task's own
 *   occurrence (in its request id) is its T; aim: p99 ≤ 100 ms;
 * - duplicates: runs and tasks beyond one per rule, task ids announced twice (must be 0), and
 *   rules that did not fire (must be 0);
 * - baseline, same database: plain multi-row INSERTs of the same number of task rows into a copy
 *   of the tasks table (the floor for "write 10,000 tasks"), and the ratio to it (burst aim: all
 *   fired within 2 × that).
 *
 * Prints figures and writes tests/bench/results/scheduler-latest.json; never fails on timing.
 *
 * Rules run with their creator's rights, checked at each firing: by default the rules are created
 * by users, as in production (even rules by each device's owner, one of 10 users; odd ones by an
 * operator holding a share on every device), so each claim batch pays its rights query.
 * BENCH_CREATORS=service creates them with a service identity instead (no rights query).
 *
 * Environment: BENCH_RULES (10000), BENCH_DEVICES (1000), BENCH_INSTANCES (`1,3`), BENCH_BATCH
 * (rules per claim transaction, 500), BENCH_POOL (connections per scheduler, 4),
 * BENCH_LEAD_SECONDS (setup budget before T, 20), BENCH_CREATORS (`users` | `service`),
 * BENCH_SCHEDULER_PHASES (`burst,spread`), TEST_POSTGRES_URL.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { cpus, loadavg } from "node:os";
import { Worker } from "node:worker_threads";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import pino from "pino";
import postgres from "postgres";
import { CreateRuleRequestSchema } from "../../gen/tether/v1/rule_service_pb.js";
import { systemClock } from "../../src/core/clock.js";
import { createRuleService } from "../../src/core/rules/rule-service.js";
import { createDeviceStore } from "../../src/store/device-store.js";
import { migrate } from "../../src/store/migrate.js";
import { createRuleStore } from "../../src/store/rule-store.js";
import { freshDatabase, TEST_POSTGRES_URL } from "../helpers/postgres.js";
import type { SchedulerWorkerData, SchedulerWorkerMessage } from "./lib/scheduler-worker.js";
import { envNumber } from "./lib/harness.js";
import { mapLimit, ms, rate, sleep, summarize, table, type LatencySummary } from "./lib/stats.js";
import { accessFromRights, FULL_ACCESS } from "../../src/core/access/access.js";

const env = process.env;
const RULES = Math.floor(envNumber("BENCH_RULES", 10_000, 1));
const DEVICES = Math.floor(envNumber("BENCH_DEVICES", 1000, 1));
const INSTANCES = (env.BENCH_INSTANCES ?? "1,3")
  .split(",")
  .map((x) => Math.floor(Number(x)))
  .filter((x) => x >= 1);
const BATCH = Math.floor(envNumber("BENCH_BATCH", 500, 1));
const POOL = Math.floor(envNumber("BENCH_POOL", 4, 1));
const LEAD_S = envNumber("BENCH_LEAD_SECONDS", 20, 3);
const BY_USERS = (env.BENCH_CREATORS ?? "users") !== "service";
type Mode = "burst" | "spread";
const MODES = (env.BENCH_SCHEDULER_PHASES ?? "burst,spread").split(",").map((m) => m.trim()) as Mode[];
/** Seconds the spread phase's occurrences cover. */
const SPREAD_S = 60;
const SPREAD_P99_AIM_MS = 100;
const BURST_AIM = 2;
const OWNERS = 10;
const log = pino({ level: "warn" });

interface Result {
  mode: Mode;
  instances: number;
  rules: number;
  tasksAnnounced: number;
  tasksStored: number;
  runs: number;
  duplicates: { runs: number; tasks: number; announced: number };
  missing: number;
  commitLag: LatencySummary;
  createLag: LatencySummary;
  allFiredMs: number;
  perInstance: number[];
  createRulesPerSecond: number;
  baselineInsertMs: number;
}

async function runConfig(mode: Mode, instances: number): Promise<Result> {
  const db = await freshDatabase(`tether_bench_sched_${mode}_${instances}`);
  const sql = postgres(db.url, { max: 16, onnotice: () => {} });
  const workers: Worker[] = [];
  try {
    await migrate(db.url, log);
    // Devices in bulk (not what is measured).
    const now = new Date();
    const devs = Array.from({ length: DEVICES }, (_, i) => ({
      id: `bench-led-${i}`,
      uid: crypto.randomUUID(),
      kind: "led",
      labels: sql.json({ group: `g${i % 10}` }),
      owner: `bench-u${i % OWNERS}`,
      max_pending_tasks: 10_000,
      create_time: now,
      update_time: now,
    }));
    for (let i = 0; i < devs.length; i += 1000) await sql`INSERT INTO devices ${sql(devs.slice(i, i + 1000))}`;
    // The rules' creators: each device's owner, and an operator with a share on every device.
    const users = [...Array.from({ length: OWNERS }, (_, i) => `bench-u${i}`), "bench-op"];
    await sql`INSERT INTO users ${sql(users.map((name) => ({ name, create_time: now, update_time: now })))}`;
    const grants = devs.map((d) => ({
      id: crypto.randomUUID(),
      principal_kind: "user",
      principal: "bench-op",
      target_kind: "device",
      target: d.id,
      role: "operator",
      creator: "bench-u0",
      create_time: now,
    }));
    for (let i = 0; i < grants.length; i += 1000) await sql`INSERT INTO grants ${sql(grants.slice(i, i + 1000))}`;
    const operator = accessFromRights({
      caller: { user: "bench-op", admin: false, groups: [] },
      devices: new Map(devs.map((d) => [d.id, "operator" as const])),
      selectors: [],
    });
    const owners = users.slice(0, OWNERS).map((user) => accessFromRights({ caller: { user, admin: false, groups: [] }, devices: new Map(), selectors: [] }));
    const creatorOfRule = (i: number) => (!BY_USERS ? FULL_ACCESS : i % 2 === 1 ? operator : owners[(i % DEVICES) % OWNERS]!);

    // The scheduler threads start now (module loading takes a moment) and idle until T.
    const announced: Array<{ instance: number; at: number; id: string; deviceId: string; requestId: string }> = [];
    const stopped: Array<Promise<void>> = [];
    const tsx = import.meta.resolve("tsx/esm/api");
    const entry = new URL("./lib/scheduler-worker.ts", import.meta.url).href;
    const ready: Array<Promise<void>> = [];
    for (let i = 0; i < instances; i++) {
      const w = new Worker(`import { register } from ${JSON.stringify(tsx)}; register(); await import(${JSON.stringify(entry)});`, {
        eval: true,
        workerData: { url: db.url, instance: i, batchSize: BATCH, poolSize: POOL } satisfies SchedulerWorkerData,
      });
      workers.push(w);
      ready.push(
        new Promise((resolve, reject) => {
          w.once("error", reject);
          w.on("message", (m: SchedulerWorkerMessage) => {
            if (m.type === "ready") resolve();
            else if (m.type === "tasks") for (const t of m.tasks) announced.push({ instance: m.instance, at: m.at, ...t });
          });
        }),
      );
      stopped.push(new Promise((resolve) => w.on("message", (m: SchedulerWorkerMessage) => m.type === "stopped" && resolve())));
    }
    await Promise.all(ready);

    // T: a whole second far enough ahead for the setup; every rule's only occurrence (burst), or
    // the first of SPREAD_S seconds the rules' occurrences are spread over (rule i at T + i mod 60 s).
    const T = new Date(Math.ceil((Date.now() + LEAD_S * 1000) / 1000) * 1000);
    const dueOf = (i: number) => new Date(T.getTime() + (mode === "spread" ? (i % SPREAD_S) * 1000 : 0));
    const cron = (at: Date) => `${at.getUTCSeconds()} ${at.getUTCMinutes()} ${at.getUTCHours()} * * *`;
    const service = createRuleService({ rules: createRuleStore(sql), devices: createDeviceStore(sql), clock: systemClock });
    const started = performance.now();
    await mapLimit(
      Array.from({ length: RULES }, (_, i) => i),
      16,
      (i) =>
        service.createRule(
          creatorOfRule(i),
          create(CreateRuleRequestSchema, {
            ruleId: `bench-${i}`,
            rule: {
              trigger: { case: "cron", value: { expression: cron(dueOf(i)), timeZone: "UTC" } },
              startTime: timestampFromDate(dueOf(i)),
              endTime: timestampFromDate(new Date(dueOf(i).getTime() + 1000)),
              target: { case: "device", value: `devices/bench-led-${i % DEVICES}` },
              command: { kind: { case: "led", value: { action: { case: "setBrightness", value: i % 101 } } } },
            },
          }),
        ),
    );
    const createRulesPerSecond = RULES / ((performance.now() - started) / 1000);

    // Baseline on the same database: the same number of task rows, plain multi-row INSERTs.
    await sql`CREATE TABLE bench_tasks (LIKE tasks INCLUDING DEFAULTS)`;
    const cmd = sql.json({ led: { setBrightness: 50 } });
    const rows = Array.from({ length: RULES }, (_, i) => ({
      id: crypto.randomUUID(),
      device_id: `bench-led-${i % DEVICES}`,
      request_id: `raw:${i}`,
      request_hash: "x",
      command: cmd,
      state: "QUEUED",
      state_reason: "",
      attempt: 0,
      max_attempts: 3,
      expire_time: new Date(Date.now() + 86_400_000),
      execution_timeout_ms: 60_000,
      create_time: new Date(),
      update_time: new Date(),
      cancel_pending: false,
      late_event_count: 0,
    }));
    const b0 = performance.now();
    for (let i = 0; i < rows.length; i += 2000) await sql`INSERT INTO bench_tasks ${sql(rows.slice(i, i + 2000))}`;
    const baselineInsertMs = performance.now() - b0;
    await sql`DROP TABLE bench_tasks`;

    if (Date.now() > T.getTime() - 1500) throw new Error(`setup ran past the due time: raise BENCH_LEAD_SECONDS (now ${LEAD_S})`);
    for (const w of workers) w.postMessage("start");
    const deadline = T.getTime() + (mode === "spread" ? SPREAD_S * 1000 : 0) + 120_000;
    while (announced.length < RULES && Date.now() < deadline) await sleep(50);
    await sleep(300); // anything late or duplicated shows up too
    for (const w of workers) w.postMessage("stop");
    await Promise.all(stopped);

    const [counts] = await sql`
      SELECT (SELECT count(*)::int FROM rule_runs) AS runs,
             (SELECT count(*)::int - count(DISTINCT (rule_id, occurrence_time))::int FROM rule_runs) AS dup_runs,
             (SELECT count(*)::int FROM tasks) AS tasks,
             (SELECT count(*)::int - count(DISTINCT (device_id, request_id))::int FROM tasks) AS dup_tasks,
             (SELECT count(*)::int FROM rules r WHERE NOT EXISTS (SELECT 1 FROM rule_runs x WHERE x.rule_id = r.id)) AS missing`;
    const created = await sql`SELECT create_time, request_id FROM tasks`;
    // Each task's own occurrence is in its request id: rule:{id}:{uid8}:{occurrence ISO}.
    const occurrenceOf = (requestId: string) => Date.parse(requestId.split(":").slice(3).join(":"));
    const occurrence = T.getTime();
    return {
      mode,
      instances,
      rules: RULES,
      tasksAnnounced: announced.length,
      tasksStored: counts!.tasks,
      runs: counts!.runs,
      duplicates: { runs: counts!.dup_runs, tasks: counts!.dup_tasks, announced: announced.length - new Set(announced.map((a) => a.id)).size },
      missing: counts!.missing,
      commitLag: summarize(announced.map((a) => a.at - occurrenceOf(a.requestId))),
      createLag: summarize(created.map((r) => (r.create_time as Date).getTime() - occurrenceOf(String(r.request_id)))),
      // After the last due time (T itself in a burst).
      allFiredMs: Math.max(...announced.map((a) => a.at)) - occurrence - (mode === "spread" ? (Math.min(RULES, SPREAD_S) - 1) * 1000 : 0),
      perInstance: Array.from({ length: instances }, (_, i) => announced.filter((a) => a.instance === i).length),
      createRulesPerSecond,
      baselineInsertMs,
    };
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
    await sql.end({ timeout: 5 });
    await db.drop();
  }
}

async function main(): Promise<void> {
  const server = new URL(TEST_POSTGRES_URL);
  console.log(
    `scheduler benchmark: ${RULES.toLocaleString("en-US")} rules on ${DEVICES.toLocaleString("en-US")} LEDs (${MODES.join(", ")}), PostgreSQL at ${server.host}, ${cpus().length} CPUs, load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}`,
  );
  console.log(
    `claim batch ${BATCH} rules/transaction, ${POOL} connections per scheduler, schedulers in worker threads; rules created by ${BY_USERS ? "users (owners and an operator share: one rights query per batch)" : "a service (no rights query)"}\n`,
  );
  const results: Result[] = [];
  for (const mode of MODES) {
    for (const n of INSTANCES) {
      const what = mode === "spread" ? `due across ${SPREAD_S} s` : "due at one instant";
      process.stdout.write(`${mode}, ${n} scheduler${n === 1 ? "" : "s"} (rules ${what}): setting up and waiting for the due time…`);
      const r = await runConfig(mode, n);
      results.push(r);
      process.stdout.write(` done (all fired ${ms(r.allFiredMs)} after the last due time)\n`);
    }
  }
  console.log();
  console.log(
    table(
      [
        "phase",
        "schedulers",
        "runs",
        "tasks",
        "dup runs",
        "dup tasks",
        "announced twice",
        "not fired",
        "lag p50",
        "p90",
        "p99",
        "max",
        "all fired",
        "per scheduler",
      ],
      results.map((r) => [
        r.mode,
        String(r.instances),
        String(r.runs),
        String(r.tasksStored),
        String(r.duplicates.runs),
        String(r.duplicates.tasks),
        String(r.duplicates.announced),
        String(r.missing),
        ms(r.commitLag.p50),
        ms(r.commitLag.p90),
        ms(r.commitLag.p99),
        ms(r.commitLag.max),
        ms(r.allFiredMs),
        r.perInstance.join(" / "),
      ]),
    ),
  );
  console.log("\nlag = the task's due time → its task committed QUEUED (the scheduler's post-commit callback); all fired = after the last due time.");
  console.log(
    table(
      ["phase", "schedulers", "due → create_time p50", "p99", "baseline: plain INSERT of as many task rows", "all fired / baseline", "CreateRule (core+store)"],
      results.map((r) => [
        r.mode,
        String(r.instances),
        ms(r.createLag.p50),
        ms(r.createLag.p99),
        `${ms(r.baselineInsertMs)} (${rate(r.rules / (r.baselineInsertMs / 1000))})`,
        `${(r.allFiredMs / r.baselineInsertMs).toFixed(1)}×`,
        rate(r.createRulesPerSecond),
      ]),
    ),
  );
  console.log("\nAims (measured in this run):");
  for (const r of results) {
    const n = `${r.instances} scheduler${r.instances === 1 ? "" : "s"}`;
    if (r.mode === "spread") {
      const met = r.commitLag.p99 <= SPREAD_P99_AIM_MS;
      console.log(`  spread, ${n}: fire lag p99 ${ms(r.commitLag.p99)} (aim ≤ ${SPREAD_P99_AIM_MS} ms) — ${met ? "met" : "MISSED"}`);
    } else {
      const ratio = r.allFiredMs / r.baselineInsertMs;
      console.log(
        `  burst, ${n}: all fired in ${ratio.toFixed(1)} × the plain INSERT baseline (aim ≤ ${BURST_AIM} ×) — ${ratio <= BURST_AIM ? "met" : "MISSED"}`,
      );
    }
    const dups = r.duplicates.runs + r.duplicates.tasks + r.duplicates.announced + r.missing;
    console.log(`  ${r.mode}, ${n}: duplicates and missed rules ${dups} (aim 0) — ${dups === 0 ? "met" : "MISSED"}`);
  }
  await mkdir(new URL("./results/", import.meta.url), { recursive: true });
  await writeFile(
    new URL("./results/scheduler-latest.json", import.meta.url),
    JSON.stringify(
      { date: new Date().toISOString(), cpus: cpus().length, loadavg: loadavg(), rules: RULES, devices: DEVICES, batch: BATCH, pool: POOL, results },
      null,
      2,
    ),
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
