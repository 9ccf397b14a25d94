import { readFile } from "node:fs/promises";
import path from "node:path";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import pino from "pino";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeviceSchema, ProductKind } from "../../gen/tether/v1/device_pb.js";
import { JobExecution_TargetState as TargetState } from "../../gen/tether/v1/job_pb.js";
import { CreateJobRequestSchema, ListJobExecutionsRequestSchema } from "../../gen/tether/v1/job_service_pb.js";
import { CreateRuleRequestSchema } from "../../gen/tether/v1/rule_service_pb.js";
import type { Task } from "../../gen/tether/v1/task_pb.js";
import { createMemoryFeed } from "../../src/bus/memory-feed.js";
import { type Access, accessFromRights } from "../../src/core/access/access.js";
import type { Role } from "../../src/core/access/roles.js";
import { parseSelector } from "../../src/core/access/selector.js";
import { createJobRunner } from "../../src/core/jobs/job-runner.js";
import { createJobService } from "../../src/core/jobs/job-service.js";
import { createRuleService } from "../../src/core/rules/rule-service.js";
import { createScheduler } from "../../src/core/rules/scheduler.js";
import { loadCreatorRights } from "../../src/store/creator-rights-query.js";
import { createDeviceStore } from "../../src/store/device-store.js";
import { createJobStore } from "../../src/store/job-store.js";
import { MIGRATIONS_DIR, migrate } from "../../src/store/migrate.js";
import { createRuleStore } from "../../src/store/rule-store.js";
import { createUserStore } from "../../src/store/user-store.js";
import { fakeClock } from "../helpers/fake-clock.js";
import { freshDatabase } from "../helpers/postgres.js";

// The creator-rights query and its use in rule firings and job rollout steps, on PostgreSQL 15.

const log = pino({ level: "silent" });
const on = { kind: { case: "led" as const, value: { action: { case: "setPower" as const, value: true } } } };
let db: Awaited<ReturnType<typeof freshDatabase>>;
let sql: postgres.Sql;
/** Statements that load creators' rights (the one query per batch), counted through postgres.js' debug hook. */
let rightsQueries = 0;
const clock = fakeClock(new Date(Date.now() - 60_000));

function who(user: string, opts: { admin?: boolean; devices?: Record<string, Role>; selectors?: Array<[string, Role]> } = {}): Access {
  return accessFromRights({
    caller: { user, admin: opts.admin ?? false, groups: [] },
    devices: new Map(Object.entries(opts.devices ?? {})),
    selectors: (opts.selectors ?? []).map(([s, role]) => ({ filter: parseSelector(s), role })),
  });
}

beforeAll(async () => {
  db = await freshDatabase("tether_creator_rights");
  await migrate(db.url, log);
  sql = postgres(db.url, {
    max: 4,
    onnotice: () => {},
    debug: (_c, query) => void (/FROM unnest\(.*\) AS u\(name\)/s.test(query) && rightsQueries++),
  });
  const now = clock.now();
  await sql`INSERT INTO users ${sql(["alice", "bob", "carol", "dan", "eve", "frank"].map((name) => ({ name, admin: name === "eve" || name === "frank", create_time: now, update_time: now })))}`;
  await sql`INSERT INTO groups (name, create_time) VALUES ('team', ${now})`;
  await sql`INSERT INTO group_members (group_name, user_name) VALUES ('team', 'carol')`;
  const devices = createDeviceStore(sql);
  for (const [id, room] of [
    ["d1", "hall"],
    ["d2", "garage"],
    ["d3", "attic"],
  ] as const) {
    await devices.insert(
      create(DeviceSchema, { name: `devices/${id}`, uid: crypto.randomUUID(), owner: "alice", labels: { room }, kind: { case: "led", value: {} } }),
      now,
    );
  }
  const grant = (kind: "user" | "group", principal: string, targetKind: "device" | "selector", target: string, role: Role) => ({
    id: crypto.randomUUID(),
    principal_kind: kind,
    principal,
    target_kind: targetKind,
    target,
    role,
    creator: "alice",
    create_time: now,
  });
  await sql`INSERT INTO grants ${sql([
    grant("user", "bob", "device", "d1", "operator"),
    grant("user", "bob", "device", "d2", "viewer"),
    grant("user", "bob", "device", "d3", "operator"),
    grant("group", "team", "device", "d2", "operator"),
    grant("user", "dan", "selector", 'labels.room = "hall"', "operator"),
    grant("user", "frank", "device", "d2", "operator"),
  ])}`;
});
afterAll(async () => {
  await sql?.end();
  await db?.drop();
});

describe("creator rights on a real PostgreSQL", () => {
  it("loads several users' rights in one query, device shares limited to the batch's devices", async () => {
    const before = rightsQueries;
    const got = await loadCreatorRights(sql, ["alice", "bob", "carol", "dan", "eve", "ghost"], ["d1", "d2"]);
    expect(rightsQueries - before).toBe(1);
    const grants = (u: string) =>
      got
        .get(u)!
        .grants.map((g) => `${g.targetKind}:${g.target}:${g.role}`)
        .sort();
    expect(got.get("ghost")).toMatchObject({ exists: false, admin: false, groups: [], grants: [] });
    expect(got.get("eve")).toMatchObject({ exists: true, admin: true });
    expect(got.get("alice")).toMatchObject({ exists: true, admin: false, grants: [] });
    expect(grants("bob")).toEqual(["device:d1:operator", "device:d2:viewer"]); // not d3: outside the batch
    expect(got.get("carol")!.groups).toEqual(["team"]);
    expect(grants("carol")).toEqual(["device:d2:operator"]);
    expect(grants("dan")).toEqual(['selector:labels.room = "hall":operator']);
  });

  it("a firing skips the devices whose creator was demoted, unshared or deleted, with one rights query for the batch", async () => {
    const rules = createRuleService({ rules: createRuleStore(sql), devices: createDeviceStore(sql), clock });
    const at = new Date(clock.now().getTime() + 10_000);
    type Target =
      | { case: "device"; value: string }
      | { case: "selector"; value: { kind: ProductKind; labels: Record<string, string> } }
      | { case: "job"; value: { command: typeof on; target: { case: "devices"; value: { devices: string[] } } } };
    const rule = (access: Access, ruleId: string, target: Target) =>
      rules.createRule(
        access,
        create(CreateRuleRequestSchema, {
          ruleId,
          rule: { trigger: { case: "oneShotTime", value: timestampFromDate(at) }, target, command: target.case === "job" ? undefined : on },
        }),
      );
    await rule(who("eve", { admin: true }), "by-eve", { case: "selector", value: { kind: ProductKind.LED, labels: { room: "hall" } } });
    await rule(who("eve", { admin: true }), "by-eve-job", {
      case: "job",
      value: { command: on, target: { case: "devices", value: { devices: ["devices/d1"] } } },
    });
    await rule(who("bob", { devices: { d1: "operator", d3: "operator" } }), "by-bob-d1", { case: "device", value: "devices/d1" });
    await rule(who("bob", { devices: { d1: "operator", d3: "operator" } }), "by-bob-d3", { case: "device", value: "devices/d3" });
    await rule(who("dan", { selectors: [['labels.room = "hall"', "operator"]] }), "by-dan", { case: "device", value: "devices/d1" });
    await rule(who("carol", { devices: { d2: "operator" } }), "by-carol", { case: "device", value: "devices/d2" });
    await rule(who("alice"), "by-alice", { case: "device", value: "devices/d2" });

    // Between creation and the firing: eve demoted, bob's share on d3 removed, dan deleted.
    await sql`UPDATE users SET admin = false WHERE name = 'eve'`;
    await sql`DELETE FROM grants WHERE principal = 'bob' AND target = 'd3'`;
    expect(await createUserStore(sql).deleteUser("dan", new Date())).toBeDefined();

    clock.set(new Date(at.getTime() + 100));
    const before = rightsQueries;
    const scheduler = createScheduler({ rules: createRuleStore(sql), clock, log, batchSize: 100 });
    expect((await scheduler.tick()).runs).toBe(7);
    // One for the tasks of the whole batch, one for its job rules: per batch, not per device or rule.
    expect(rightsQueries - before).toBe(2);

    const runs = await sql`SELECT rule_id, state, state_reason, targets, job_id FROM rule_runs ORDER BY rule_id`;
    const view = Object.fromEntries(runs.map((r) => [r.rule_id, [r.state, (r.targets as Array<{ error: string | null }>).map((t) => t.error ?? "task")]]));
    expect(view).toEqual({
      "by-alice": ["FIRED", ["task"]],
      "by-bob-d1": ["FIRED", ["task"]],
      "by-bob-d3": ["FAILED", ["skipped: creator users/bob lost operator on devices/d3 (bob has no role on it)"]],
      "by-carol": ["FIRED", ["task"]],
      "by-dan": ["FAILED", ["skipped: creator users/dan lost operator on devices/d1 (no such user: deleted, or never registered)"]],
      "by-eve": ["FAILED", ["skipped: creator users/eve lost operator on devices/d1 (eve has no role on it)"]],
      "by-eve-job": ["FAILED", []],
    });
    const jobRun = runs.find((r) => r.rule_id === "by-eve-job")!;
    expect(jobRun.state_reason).toBe("skipped: creator users/eve is no longer an admin; a rule that starts jobs needs one");
    expect(jobRun.job_id).toBeNull();
    expect(await sql`SELECT id FROM jobs`).toHaveLength(0);
    const tasks = await sql`SELECT device_id, state_reason FROM tasks ORDER BY device_id, state_reason`;
    expect(tasks.map((t) => `${t.device_id} ${String(t.state_reason).split(" for ")[0]}`)).toEqual([
      "d1 created by rules/by-bob-d1",
      "d2 created by rules/by-alice",
      "d2 created by rules/by-carol",
    ]);
  });

  it("a rollout step skips the targets its creator lost, with one rights query per batch", async () => {
    const jobs = createJobService({ jobs: createJobStore(sql), clock, jobFeed: createMemoryFeed<string>(), taskFeed: createMemoryFeed<Task>() });
    const start = new Date(clock.now().getTime() + 5000);
    const job = await jobs.createJob(
      who("frank", { admin: true }),
      create(CreateJobRequestSchema, {
        jobId: "by-frank",
        job: { command: on, target: { case: "devices", value: { devices: ["devices/d1", "devices/d2", "devices/d3"] } }, startTime: timestampFromDate(start) },
      }),
    );
    expect(job.creator).toBe("users/frank");
    await sql`UPDATE users SET admin = false WHERE name = 'frank'`; // demoted; keeps his operator share on d2
    clock.set(new Date(start.getTime() + 1000));
    const before = rightsQueries;
    const runner = createJobRunner({ jobs: createJobStore(sql), clock, log, batchSize: 1000 });
    await runner.runOnce();
    expect(rightsQueries - before).toBe(1);
    const res = await jobs.listJobExecutions(create(ListJobExecutionsRequestSchema, { parent: "jobs/by-frank" }));
    expect(res.executions.map((e) => [e.device, TargetState[e.targetState], e.reason])).toEqual([
      ["devices/d1", "SKIPPED", "skipped: creator users/frank lost operator on devices/d1 (frank has no role on it)"],
      ["devices/d2", "DISPATCHED", "created by jobs/by-frank"],
      ["devices/d3", "SKIPPED", "skipped: creator users/frank lost operator on devices/d3 (frank has no role on it)"],
    ]);
  });

  it("migration 1732300000011 backfills existing rules and jobs with users/admin", async () => {
    // The rows above, as they were before the column existed; then the migration's Up part.
    await sql`ALTER TABLE rules DROP COLUMN creator`;
    await sql`ALTER TABLE jobs DROP COLUMN creator`;
    const file = await readFile(path.join(MIGRATIONS_DIR, "1732300000011_creators.sql"), "utf8");
    await sql.unsafe(file.split("-- Down Migration")[0]!);
    expect((await sql`SELECT DISTINCT creator FROM rules`).map((r) => r.creator)).toEqual(["users/admin"]);
    expect((await sql`SELECT DISTINCT creator FROM jobs`).map((r) => r.creator)).toEqual(["users/admin"]);
    await expect(sql`UPDATE rules SET creator = NULL`).rejects.toThrow(/not-null|null value/);
  });
});
