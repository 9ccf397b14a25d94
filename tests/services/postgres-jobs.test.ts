import { create } from "@bufbuild/protobuf";
import { FULL_ACCESS } from "../../src/core/access/access.js";
import pino from "pino";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CreateJobRequestSchema } from "../../gen/tether/v1/job_service_pb.js";
import type { Task } from "../../gen/tether/v1/task_pb.js";
import { createMemoryFeed } from "../../src/bus/memory-feed.js";
import { createJobRunner } from "../../src/core/jobs/job-runner.js";
import { createJobService } from "../../src/core/jobs/job-service.js";
import { createJobStore } from "../../src/store/job-store.js";
import { migrate } from "../../src/store/migrate.js";
import { fakeClock } from "../helpers/fake-clock.js";
import { freshDatabase } from "../helpers/postgres.js";

const log = pino({ level: "silent" });
let db: Awaited<ReturnType<typeof freshDatabase>>;
let pools: postgres.Sql[] = [];
beforeAll(async () => {
  db = await freshDatabase("tether_jobs");
  await migrate(db.url, log);
  // Three runners, three pools: as three Tether replicas on one database.
  pools = [0, 1, 2].map(() => postgres(db.url, { max: 4, onnotice: () => {} }));
});
afterAll(async () => {
  await Promise.all(pools.map((p) => p.end()));
  await db?.drop();
});

describe("jobs on a real PostgreSQL", () => {
  it("three runners rolling out one job over 20,000 devices create exactly one task per device", async () => {
    const sql = pools[0]!;
    const now = new Date();
    for (let i = 0; i < 20_000; i += 2000) {
      const rows = Array.from({ length: 2000 }, (_, k) => ({
        id: `pj-${String(i + k).padStart(5, "0")}`,
        uid: crypto.randomUUID(),
        kind: "led",
        labels: sql.json({ g: "pj" }),
        create_time: now,
        update_time: now,
      }));
      await sql`INSERT INTO devices ${sql(rows)}`;
    }
    const clock = fakeClock(now);
    const service = createJobService({ jobs: createJobStore(sql), clock, jobFeed: createMemoryFeed<string>(), taskFeed: createMemoryFeed<Task>() });
    const job = await service.createJob(
      FULL_ACCESS,
      create(CreateJobRequestSchema, {
        jobId: "pj",
        job: {
          command: { kind: { case: "led", value: { action: { case: "setPower", value: true } } } },
          target: { case: "selector", value: { filter: 'labels.g = "pj"' } },
        },
      }),
    );
    expect(job.progress?.targetCount).toBe(20_000n);
    const announced: string[] = [];
    const runners = pools.map((p) =>
      createJobRunner({ jobs: createJobStore(p), clock, log, batchSize: 500, onTasksCreated: (tasks) => announced.push(...tasks.map((t) => t.id)) }),
    );
    for (let round = 0; round < 50; round++) {
      const r = await Promise.all(runners.map((x) => x.runOnce()));
      if (r.every((x) => x.dispatched === 0) && round > 0) break;
    }
    const [c] = await sql`SELECT count(*)::int AS n, count(DISTINCT device_id)::int AS d FROM tasks WHERE job_id = 'pj'`;
    expect(c).toEqual({ n: 20_000, d: 20_000 });
    expect(announced.length).toBe(20_000);
    expect(new Set(announced).size).toBe(20_000);
    const [t] =
      await sql`SELECT count(*) FILTER (WHERE state = 'DISPATCHED')::int AS d, count(*) FILTER (WHERE task_id IS NULL)::int AS missing FROM job_targets WHERE job_id = 'pj'`;
    expect(t).toEqual({ d: 20_000, missing: 0 });
    expect((await service.getJob("jobs/pj")).progress?.pendingCount).toBe(0n);
  }, 120_000);
});
