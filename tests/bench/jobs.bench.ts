/**
 * Jobs benchmark: one job over 100,000 registered devices.
 *
 *   npm run bench:jobs                                   # embedded PGlite, 100,000 offline LEDs
 *   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm run bench:jobs   # a fresh database on that server
 *   BENCH_DEVICES=20000 BENCH_RATE=12000 npm run bench:jobs
 *
 * The devices are registered with plain multi-row INSERTs (setup, not measured) and stay offline,
 * so what is measured is the job path itself, composed as app.ts composes it: the JobService
 * core and store, and the job runner announcing every task on a task feed (toTaskProto, as
 * watchers see it). Then:
 *
 * 1. CreateJob with a label selector over every device: the time of the call (one INSERT … SELECT
 *    of the targets) and the process memory (rss, heap) before and after;
 * 2. the rollout with no rate limit until every target has its QUEUED task: executions queued per
 *    second, and the peak rss/heap while it runs (sampled every 50 ms);
 * 3. a second job at BENCH_RATE per minute for BENCH_RATE_SECONDS: the rate achieved, from the
 *    job's creation to its last task's create_time (the runner's tick is 1 s, as in production);
 * 4. baseline: plain INSERTs of as many task rows into a copy of the tasks table, same database.
 *
 * Prints figures and writes tests/bench/results/jobs-latest.json; never fails on timing.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { FULL_ACCESS } from "../../src/core/access/access.js";
import { cpus, tmpdir } from "node:os";
import path from "node:path";
import { create } from "@bufbuild/protobuf";
import pino from "pino";
import { CreateJobRequestSchema } from "../../gen/tether/v1/job_service_pb.js";
import type { Task } from "../../gen/tether/v1/task_pb.js";
import { createMemoryFeed } from "../../src/bus/memory-feed.js";
import { systemClock } from "../../src/core/clock.js";
import { createJobRunner } from "../../src/core/jobs/job-runner.js";
import { createJobService } from "../../src/core/jobs/job-service.js";
import { toTaskProto } from "../../src/core/tasks/task-record.js";
import { type Database, openDatabase } from "../../src/store/database.js";
import { createJobStore } from "../../src/store/job-store.js";
import { freshDatabase } from "../helpers/postgres.js";
import { createCleanups, envNumber, gitDescribe, recordProcessErrors, runBench, writeResults } from "./lib/harness.js";
import { rate, sleep, table } from "./lib/stats.js";

const DEVICES = Math.floor(envNumber("BENCH_DEVICES", 100_000, 1));
const RATE = Math.floor(envNumber("BENCH_RATE", 12_000, 1));
const RATE_SECONDS = envNumber("BENCH_RATE_SECONDS", 20, 3);
const BATCH = Math.floor(envNumber("BENCH_BATCH", 1000, 1));
const log = pino({ level: "warn" });
const mib = (b: number) => `${(b / 1024 / 1024).toFixed(0)} MiB`;

/** Samples rss and heap every 50 ms; `stop()` returns the peaks. */
function memoryPeaks() {
  let rss = process.memoryUsage.rss();
  let heap = process.memoryUsage().heapUsed;
  const t = setInterval(() => {
    rss = Math.max(rss, process.memoryUsage.rss());
    heap = Math.max(heap, process.memoryUsage().heapUsed);
  }, 50);
  return { stop: () => (clearInterval(t), { rss, heap }) };
}

async function main(): Promise<void> {
  const errors = recordProcessErrors();
  const cleanups = createCleanups();
  try {
    let db: Database;
    let where: string;
    if (process.env.BENCH_DATABASE_URL) {
      const fresh = await freshDatabase("tether_bench_jobs");
      cleanups.push(() => fresh.drop());
      db = await openDatabase({ url: fresh.url, dataDir: "", maxConnections: 4, log });
      where = `PostgreSQL (${new URL(process.env.BENCH_DATABASE_URL).host})`;
    } else {
      const dir = await mkdtemp(path.join(tmpdir(), "tether-bench-jobs-"));
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
      db = await openDatabase({ dataDir: path.join(dir, "pg"), maxConnections: 1, log });
      where = "embedded PGlite";
    }
    cleanups.push(() => db.close());
    const sql = db.sql;
    console.log(`jobs benchmark: ${DEVICES.toLocaleString("en-US")} offline LEDs, ${where}, ${cpus().length} CPUs, commit ${gitDescribe()}\n`);

    process.stdout.write("registering devices…");
    const r0 = performance.now();
    const now = new Date();
    for (let i = 0; i < DEVICES; i += 2000) {
      const rows = Array.from({ length: Math.min(2000, DEVICES - i) }, (_, k) => ({
        id: `bench-led-${String(i + k).padStart(6, "0")}`,
        uid: crypto.randomUUID(),
        kind: "led",
        labels: sql.json({ fleet: "bench", floor: String((i + k) % 10) }),
        create_time: now,
        update_time: now,
      }));
      await sql`INSERT INTO devices ${sql(rows)}`;
    }
    console.log(` ${DEVICES.toLocaleString("en-US")} in ${((performance.now() - r0) / 1000).toFixed(1)} s\n`);

    const store = createJobStore(sql);
    const taskFeed = createMemoryFeed<Task>();
    let announced = 0;
    taskFeed.subscribe(() => announced++);
    const service = createJobService({ jobs: store, clock: systemClock, jobFeed: createMemoryFeed<string>(), taskFeed });
    const runner = createJobRunner({
      jobs: store,
      clock: systemClock,
      log,
      batchSize: BATCH,
      onTasksCreated: (tasks) => {
        for (const t of tasks) taskFeed.publish(toTaskProto(t));
      },
    });
    const command = { kind: { case: "led" as const, value: { action: { case: "setPower" as const, value: false } } } };

    // 1. CreateJob over every device.
    global.gc?.();
    const memBefore = process.memoryUsage();
    const createPeak = memoryPeaks();
    const c0 = performance.now();
    const job = await service.createJob(
      FULL_ACCESS,
      create(CreateJobRequestSchema, { jobId: "all-off", job: { command, target: { case: "selector", value: { filter: 'labels.fleet = "bench"' } } } }),
    );
    const createMs = performance.now() - c0;
    const createMem = createPeak.stop();
    console.log(`CreateJob: ${job.progress!.targetCount.toLocaleString("en-US")} targets in ${createMs.toFixed(0)} ms`);

    // 2. The rollout, unthrottled, until every target has its task.
    const rolloutPeak = memoryPeaks();
    const t0 = performance.now();
    runner.start();
    let progress = job.progress!;
    let lastPrint = 0;
    for (;;) {
      await sleep(200);
      progress = (await service.getJob("jobs/all-off")).progress!;
      if (performance.now() - lastPrint > 2000) {
        lastPrint = performance.now();
        process.stdout.write(`  ${progress.executionCount.toLocaleString("en-US")} queued after ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
      }
      if (progress.pendingCount === 0n) break;
    }
    const rolloutMs = performance.now() - t0;
    await runner.stop();
    const rolloutMem = rolloutPeak.stop();
    const queued = Number(progress.executionCount);
    const [dup] = await sql`SELECT count(*)::int - count(DISTINCT device_id)::int AS d FROM tasks WHERE job_id = 'all-off'`;
    console.log(
      `rollout: ${queued.toLocaleString("en-US")} executions QUEUED in ${(rolloutMs / 1000).toFixed(1)} s = ${rate(queued / (rolloutMs / 1000))} (${rate((queued / rolloutMs) * 60_000).replace("/s", "/min")}); announced ${announced}, duplicates ${dup!.d}`,
    );

    // 3. A rate-limited job: does the rollout hold a high rate?
    const rateJob = create(CreateJobRequestSchema, {
      jobId: "rated",
      job: { command, target: { case: "selector", value: { filter: 'labels.fleet = "bench"' } }, rollout: { maxPerMinute: RATE } },
    });
    await service.createJob(FULL_ACCESS, rateJob);
    runner.start();
    await sleep(RATE_SECONDS * 1000);
    await runner.stop();
    // From the job's creation (when its budget starts) to its last task.
    const [span] = await sql`
      SELECT count(*)::int AS n, extract(epoch FROM max(t.create_time) - j.create_time) * 1000 AS ms
      FROM tasks t JOIN jobs j ON j.id = t.job_id WHERE t.job_id = 'rated' GROUP BY j.create_time`;
    const achieved = Number(span!.n) / (Number(span!.ms) / 60_000);
    console.log(
      `rated job: asked ${RATE.toLocaleString("en-US")}/min, achieved ${Math.round(achieved).toLocaleString("en-US")}/min (${span!.n} tasks over ${(Number(span!.ms) / 1000).toFixed(1)} s of create_time)`,
    );

    // 4. Baseline: the same number of task rows with plain multi-row INSERTs.
    await sql`CREATE TABLE bench_tasks (LIKE tasks INCLUDING DEFAULTS)`;
    const cmd = sql.json({ led: { setPower: false } });
    const b0 = performance.now();
    for (let i = 0; i < queued; i += 1000) {
      const rows = Array.from({ length: Math.min(1000, queued - i) }, (_, k) => ({
        id: crypto.randomUUID(),
        device_id: `bench-led-${String(i + k).padStart(6, "0")}`,
        request_id: "raw",
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
      await sql`INSERT INTO bench_tasks ${sql(rows)}`;
    }
    const baselineMs = performance.now() - b0;
    await sql`DROP TABLE bench_tasks`;

    console.log();
    console.log(
      table(
        ["", "value"],
        [
          ["devices (targets)", DEVICES.toLocaleString("en-US")],
          ["CreateJob time", `${createMs.toFixed(0)} ms`],
          ["rss before → peak during CreateJob", `${mib(memBefore.rss)} → ${mib(createMem.rss)}`],
          ["heap before → peak during CreateJob", `${mib(memBefore.heapUsed)} → ${mib(createMem.heap)}`],
          ["rollout, unthrottled", `${rate(queued / (rolloutMs / 1000))} = ${Math.round((queued / rolloutMs) * 60_000).toLocaleString("en-US")}/min`],
          ["peak rss / heap during the rollout", `${mib(rolloutMem.rss)} / ${mib(rolloutMem.heap)}`],
          ["rate-limited job", `${RATE.toLocaleString("en-US")}/min asked, ${Math.round(achieved).toLocaleString("en-US")}/min achieved`],
          [
            "baseline: plain INSERT of as many task rows",
            `${rate(queued / (baselineMs / 1000))} (rollout = ${(baselineMs / rolloutMs).toFixed(2)} × baseline)`,
          ],
          ["duplicate tasks", String(dup!.d)],
        ],
      ),
    );
    if (errors.length > 0) console.log(`\n${errors.length} uncaught error(s) during the run (see above)`);
    await writeResults("jobs", {
      date: new Date().toISOString(),
      commit: gitDescribe(),
      database: where,
      cpus: cpus().length,
      devices: DEVICES,
      batch: BATCH,
      createMs,
      memory: { before: memBefore, createPeak: createMem, rolloutPeak: rolloutMem },
      rollout: { queued, ms: rolloutMs, perSecond: queued / (rolloutMs / 1000), duplicates: dup!.d },
      rated: { asked: RATE, achieved, tasks: Number(span!.n) },
      baselineMs,
      errors,
    });
  } finally {
    await cleanups.run();
  }
}

runBench(main);
