import { mkdtemp, rm } from "node:fs/promises";
import { FULL_ACCESS } from "../../src/core/access/access.js";
import { tmpdir } from "node:os";
import path from "node:path";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeviceSelector_Mode as Mode, Job_State as JobState } from "../../gen/tether/v1/job_pb.js";
import { CancelJobRequestSchema, CreateJobRequestSchema } from "../../gen/tether/v1/job_service_pb.js";
import type { Task } from "../../gen/tether/v1/task_pb.js";
import { createMemoryFeed } from "../../src/bus/memory-feed.js";
import { createJobRunner } from "../../src/core/jobs/job-runner.js";
import { createJobService } from "../../src/core/jobs/job-service.js";
import { createLogger } from "../../src/log.js";
import { type Database, openDatabase } from "../../src/store/database.js";
import { createJobStore } from "../../src/store/job-store.js";
import { fakeClock } from "../helpers/fake-clock.js";

// The rollout against the embedded database with a fake clock: rates measured exactly from the
// tasks' create_time, replicas racing on one job, continuous selectors, pause/resume/cancel.

const log = createLogger("silent");
let dir: string;
let db: Database;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "tether-jobs-"));
  db = await openDatabase({ dataDir: path.join(dir, "pg"), maxConnections: 1, log });
});
afterAll(async () => {
  await db?.close();
  await rm(dir, { recursive: true, force: true });
});

async function addDevices(prefix: string, n: number, labels: Record<string, string>, kind = "led") {
  const now = new Date();
  const rows = Array.from({ length: n }, (_, i) => ({
    id: `${prefix}-${String(i).padStart(5, "0")}`,
    uid: crypto.randomUUID(),
    kind,
    labels: db.sql.json(labels),
    create_time: now,
    update_time: now,
  }));
  for (let i = 0; i < rows.length; i += 1000) await db.sql`INSERT INTO devices ${db.sql(rows.slice(i, i + 1000))}`;
}

function harness(start = "2025-01-01T00:00:00Z") {
  const clock = fakeClock(start);
  const store = createJobStore(db.sql);
  const jobFeed = createMemoryFeed<string>();
  const taskFeed = createMemoryFeed<Task>();
  const service = createJobService({ jobs: store, clock, jobFeed, taskFeed });
  const runner = () => createJobRunner({ jobs: store, clock, log, batchSize: 500, rescanMs: 5000 });
  return { clock, store, service, runner };
}
const brightness = (n: number) => ({ kind: { case: "led" as const, value: { action: { case: "setBrightness" as const, value: n } } } });
const tasksOf = (jobId: string) => db.sql`SELECT device_id, create_time FROM tasks WHERE job_id = ${jobId} ORDER BY create_time, seq`;

describe("job rollout (embedded database, fake clock)", () => {
  it("respects the rate: 120 per minute measured from the tasks' create_time", async () => {
    await addDevices("rate", 300, { grp: "rate" });
    const h = harness();
    const job = await h.service.createJob(
      FULL_ACCESS,
      create(CreateJobRequestSchema, {
        jobId: "rate-120",
        job: { command: brightness(10), target: { case: "selector", value: { filter: 'labels.grp = "rate"' } }, rollout: { maxPerMinute: 120 } },
      }),
    );
    expect(job.progress?.targetCount).toBe(300n);
    const runner = h.runner();
    // Ticks at uneven spacing, some late (up to the 2 s the bucket holds).
    for (let i = 0; i < 90; i++) {
      await runner.runOnce();
      h.clock.advance(i % 7 === 3 ? 1900 : 700);
    }
    const rows = await tasksOf("rate-120");
    const t0 = new Date("2025-01-01T00:00:00Z").getTime();
    const times = rows.map((r) => (r.create_time as Date).getTime() - t0);
    const elapsed = times.at(-1)!;
    // Never above the rate (plus the first one, which goes at once) …
    for (const w of [10_000, 30_000, 60_000]) {
      for (let s = 0; s + w <= elapsed; s += 1000) {
        const n = times.filter((t) => t >= s && t < s + w).length;
        expect(n).toBeLessThanOrEqual((120 * w) / 60_000 + 2);
      }
    }
    // … and close to it overall (the bucket holds 2 s, so late ticks lose nothing).
    expect(rows.length).toBeGreaterThanOrEqual(Math.floor(((120 * elapsed) / 60_000) * 0.95));
    expect(new Set(rows.map((r) => r.device_id)).size).toBe(rows.length);
  });

  it("two runners (replicas) on one job: every device gets exactly one task", async () => {
    await addDevices("race", 3000, { grp: "race" });
    const h = harness();
    await h.service.createJob(
      FULL_ACCESS,
      create(CreateJobRequestSchema, {
        jobId: "race",
        job: { command: brightness(20), target: { case: "selector", value: { filter: 'labels.grp = "race"' } } },
      }),
    );
    const a = h.runner();
    const b = h.runner();
    for (let i = 0; i < 20; i++) {
      const [ra, rb] = await Promise.all([a.runOnce(), b.runOnce()]);
      if (ra.dispatched + rb.dispatched === 0 && i > 0) break;
    }
    const [c] = await db.sql`SELECT count(*)::int AS n, count(DISTINCT device_id)::int AS d FROM tasks WHERE job_id = 'race'`;
    expect(c).toEqual({ n: 3000, d: 3000 });
    const [t] = await db.sql`SELECT count(*)::int AS n FROM job_targets WHERE job_id = 'race' AND state = 'DISPATCHED'`;
    expect(t!.n).toBe(3000);
    const j = await h.service.getJob("jobs/race");
    expect(j.progress?.pendingCount).toBe(0n);
    expect(j.progress?.executionCount).toBe(3000n);
  });

  it("a continuous job picks up devices that match later; a snapshot job does not", async () => {
    await addDevices("cont", 3, { site: "c1" });
    const h = harness();
    const selector = (mode: Mode) => ({ case: "selector" as const, value: { filter: 'labels.site = "c1"', mode } });
    await h.service.createJob(
      FULL_ACCESS,
      create(CreateJobRequestSchema, { jobId: "cont", job: { command: brightness(30), target: selector(Mode.CONTINUOUS) } }),
    );
    await h.service.createJob(
      FULL_ACCESS,
      create(CreateJobRequestSchema, { jobId: "snap", job: { command: brightness(30), target: selector(Mode.SNAPSHOT) } }),
    );
    const runner = h.runner();
    await runner.runOnce();
    expect((await tasksOf("cont")).length).toBe(3);
    await addDevices("cont-late", 2, { site: "c1" });
    await addDevices("cont-coffee", 1, { site: "c1" }, "coffee_machine"); // another kind: never targeted
    h.clock.advance(6000); // past the rescan interval
    await runner.runOnce();
    expect((await tasksOf("cont")).map((r) => r.device_id).sort()).toEqual(["cont-00000", "cont-00001", "cont-00002", "cont-late-00000", "cont-late-00001"]);
    expect((await tasksOf("snap")).length).toBe(3);
    // Tasks all done: the snapshot job completes, the continuous one keeps running.
    await db.sql`UPDATE tasks SET state = 'SUCCEEDED' WHERE job_id IN ('cont', 'snap')`;
    h.clock.advance(6000); // a fully dispatched job is looked at every settleMs (5 s here)
    await runner.runOnce();
    expect((await h.service.getJob("jobs/snap")).state).toBe(JobState.COMPLETED);
    expect((await h.service.getJob("jobs/cont")).state).toBe(JobState.RUNNING);
    await h.service.cancelJob(create(CancelJobRequestSchema, { name: "jobs/cont" }));
    expect((await h.service.getJob("jobs/cont")).state).toBe(JobState.CANCELED);
  });

  it("pause stops the rollout, resume continues at the rate without catching up, cancel skips the rest", async () => {
    await addDevices("pr", 100, { grp: "pr" });
    const h = harness();
    await h.service.createJob(
      FULL_ACCESS,
      create(CreateJobRequestSchema, {
        jobId: "pr",
        job: { command: brightness(40), target: { case: "selector", value: { filter: 'labels.grp = "pr"' } }, rollout: { maxPerMinute: 60 } },
      }),
    );
    const runner = h.runner();
    for (let i = 0; i < 10; i++) {
      await runner.runOnce();
      h.clock.advance(1000);
    }
    const before = (await tasksOf("pr")).length;
    expect(before).toBeGreaterThanOrEqual(9);
    expect(before).toBeLessThanOrEqual(11);
    expect((await h.service.pauseJob("jobs/pr")).state).toBe(JobState.PAUSED);
    h.clock.advance(60_000);
    await runner.runOnce();
    expect((await tasksOf("pr")).length).toBe(before);
    expect((await h.service.resumeJob("jobs/pr")).state).toBe(JobState.RUNNING);
    await runner.runOnce();
    expect((await tasksOf("pr")).length).toBe(before + 1); // one token, not a minute's worth
    const canceled = await h.service.cancelJob(create(CancelJobRequestSchema, { name: "jobs/pr", reason: "enough" }));
    expect(canceled.state).toBe(JobState.CANCELED);
    expect(canceled.stateReason).toBe("canceled: enough");
    expect(canceled.progress?.pendingCount).toBe(0n);
    expect(canceled.progress?.skippedCount).toBe(BigInt(100 - before - 1));
    h.clock.advance(60_000);
    await runner.runOnce();
    expect((await tasksOf("pr")).length).toBe(before + 1);
    await expect(h.service.pauseJob("jobs/pr")).rejects.toThrow(/already ended as CANCELED/);
  });

  it("a job with a start time waits for it", async () => {
    await addDevices("sched", 5, { grp: "sched" });
    const h = harness();
    const j = await h.service.createJob(
      FULL_ACCESS,
      create(CreateJobRequestSchema, {
        jobId: "sched",
        job: {
          command: brightness(50),
          target: { case: "selector", value: { filter: 'labels.grp = "sched"' } },
          startTime: timestampFromDate(new Date("2025-01-01T00:10:00Z")),
        },
      }),
    );
    expect(j.state).toBe(JobState.SCHEDULED);
    const runner = h.runner();
    await runner.runOnce();
    expect((await tasksOf("sched")).length).toBe(0);
    h.clock.set("2025-01-01T00:10:00Z");
    await runner.runOnce();
    expect((await tasksOf("sched")).length).toBe(5);
    expect((await h.service.getJob("jobs/sched")).state).toBe(JobState.RUNNING);
  });
});
