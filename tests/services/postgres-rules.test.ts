import { create } from "@bufbuild/protobuf";
import pino from "pino";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeviceSchema, ProductKind } from "../../gen/tether/v1/device_pb.js";
import { EventTrigger_Comparison as Comparison } from "../../gen/tether/v1/rule_pb.js";
import { CreateRuleRequestSchema, ListRuleRunsRequestSchema } from "../../gen/tether/v1/rule_service_pb.js";
import { createEventRules } from "../../src/core/rules/event-rules.js";
import { createRuleService } from "../../src/core/rules/rule-service.js";
import { createScheduler } from "../../src/core/rules/scheduler.js";
import { nextOccurrences } from "../../src/core/rules/schedule.js";
import type { TaskRecord } from "../../src/core/tasks/task-record.js";
import { createDeviceStore } from "../../src/store/device-store.js";
import { migrate } from "../../src/store/migrate.js";
import { createRuleStore } from "../../src/store/rule-store.js";
import { fakeClock } from "../helpers/fake-clock.js";
import { freshDatabase } from "../helpers/postgres.js";
import { FULL_ACCESS } from "../../src/core/access/access.js";

const log = pino({ level: "silent" });
const on = { kind: { case: "led" as const, value: { action: { case: "setPower" as const, value: true } } } };
let db: Awaited<ReturnType<typeof freshDatabase>>;
let pools: postgres.Sql[] = [];
beforeAll(async () => {
  db = await freshDatabase("tether_rules");
  await migrate(db.url, log);
  // Three schedulers, three pools: as three Tether replicas on one database.
  pools = [0, 1, 2].map(() => postgres(db.url, { max: 4, onnotice: () => {} }));
});
afterAll(async () => {
  await Promise.all(pools.map((p) => p.end()));
  await db?.drop();
});

describe("rules on a real PostgreSQL", () => {
  it("three schedulers on one database fire each of 1,000 occurrences exactly once", async () => {
    const clock = fakeClock("2026-01-05T08:00:00.000Z");
    const devices = createDeviceStore(pools[0]!);
    for (let i = 0; i < 20; i++) {
      await devices.insert(
        create(DeviceSchema, { name: `devices/race-${i}`, uid: crypto.randomUUID(), labels: { group: `g${i}` }, kind: { case: "led", value: {} } }),
        clock.now(),
      );
    }
    const service = createRuleService({ rules: createRuleStore(pools[0]!), devices, clock });
    // 20 rules every 3 s: half aim at a device, half at a selector matching one device.
    for (let i = 0; i < 20; i++) {
      await service.createRule(
        FULL_ACCESS,
        create(CreateRuleRequestSchema, {
          ruleId: `race-${i}`,
          rule: {
            trigger: { case: "cron", value: { expression: "*/3 * * * * *", timeZone: "UTC" } },
            target:
              i % 2 === 0 ? { case: "device", value: `devices/race-${i}` } : { case: "selector", value: { kind: ProductKind.LED, labels: { group: `g${i}` } } },
            command: on,
          },
        }),
      );
    }
    const created: TaskRecord[][] = [[], [], []];
    const schedulers = pools.map((sql, i) =>
      createScheduler({ rules: createRuleStore(sql), clock, log, batchSize: 7, onTasksCreated: (t) => created[i]!.push(...t) }),
    );
    // 150 s of schedule = 50 occurrences × 20 rules. The clock moves in uneven steps (0.3–2.9 s,
    // always within the misfire grace); at each step every instance ticks at once, racing.
    const end = Date.parse("2026-01-05T08:02:30.000Z");
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    while (clock.now().getTime() < end) {
      clock.advance(Math.min(300 + Math.floor(random() * 2600), end - clock.now().getTime()));
      await Promise.all(schedulers.map((s) => s.tick()));
    }

    const expected = nextOccurrences({ trigger: { kind: "cron", expression: "*/3 * * * * *", timeZone: "UTC" } }, new Date("2026-01-05T08:00:00.000Z"), 50);
    expect(expected.at(-1)?.toISOString()).toBe("2026-01-05T08:02:30.000Z");
    const sql = pools[0]!;
    const runs = await sql`SELECT rule_id, occurrence_time, state, jsonb_array_length(targets) AS n FROM rule_runs`;
    expect(runs.length).toBe(1000);
    expect(new Set(runs.map((r) => `${r.rule_id}|${(r.occurrence_time as Date).toISOString()}`)).size).toBe(1000);
    expect(runs.every((r) => r.state === "FIRED" && r.n === 1)).toBe(true);
    for (let i = 0; i < 20; i++) {
      const mine = runs
        .filter((r) => r.rule_id === `race-${i}`)
        .map((r) => (r.occurrence_time as Date).getTime())
        .sort();
      expect(mine).toEqual(expected.map((d) => d.getTime()));
    }
    const [{ tasks, requests }] =
      (await sql`SELECT count(*)::int AS tasks, count(DISTINCT (device_id, request_id))::int AS requests FROM tasks`) as unknown as [
        { tasks: number; requests: number },
      ];
    expect(tasks).toBe(1000);
    expect(requests).toBe(1000);
    const perDevice = await sql`SELECT device_id, count(*)::int AS n FROM tasks WHERE state = 'QUEUED' GROUP BY device_id`;
    expect(perDevice.map((r) => r.n)).toEqual(Array(20).fill(50));
    // What the instances announced after their commits: every task once, none twice.
    const announced = created.flat().map((t) => t.id);
    expect(announced.length).toBe(1000);
    expect(new Set(announced).size).toBe(1000);
    // The work was shared (not one instance doing everything).
    expect(created.filter((c) => c.length > 0).length).toBeGreaterThanOrEqual(2);
    const [{ pending }] = (await sql`SELECT count(*)::int AS pending FROM rules WHERE next_fire_time <= ${clock.now()}`) as unknown as [{ pending: number }];
    expect(pending).toBe(0);
  });

  it("an event rule seen by three replicas at once fires once per cooldown, and the cooldown survives a restart", async () => {
    const clock = fakeClock(new Date());
    const devices = createDeviceStore(pools[0]!);
    await devices.insert(create(DeviceSchema, { name: "devices/tank", uid: crypto.randomUUID(), kind: { case: "coffeeMachine", value: {} } }), clock.now());
    const service = createRuleService({ rules: createRuleStore(pools[0]!), devices, clock });
    await service.createRule(
      FULL_ACCESS,
      create(CreateRuleRequestSchema, {
        ruleId: "tank-low",
        rule: {
          trigger: { case: "eventTrigger", value: { metric: "water_level_percent", comparison: Comparison.LT, threshold: 10, cooldown: { seconds: 300n } } },
          target: { case: "device", value: "devices/tank" },
          command: { kind: { case: "coffeeMachine", value: { action: { case: "setPower", value: false } } } },
        },
      }),
    );
    const created: TaskRecord[] = [];
    const engines = pools.map((sql) => createEventRules({ rules: createRuleStore(sql), clock, log, onTasksCreated: (t) => created.push(...t) }));
    await Promise.all(engines.map((e) => e.start()));
    // The same samples reach all three (e.g. duplicated delivery), 10 s apart, for 2 minutes.
    for (let i = 0; i < 12; i++) {
      const t = clock.advance(10_000);
      for (const e of engines) e.observe("tank", "water_level_percent", 5, t);
      await Promise.all(engines.map((e) => e.idle()));
    }
    expect(created).toHaveLength(1);
    // A restarted replica does not know the cooldown in memory: the database holds it.
    const restarted = createEventRules({ rules: createRuleStore(pools[1]!), clock, log, onTasksCreated: (t) => created.push(...t) });
    await restarted.start();
    restarted.observe("tank", "water_level_percent", 4, clock.advance(10_000));
    await restarted.idle();
    expect(created).toHaveLength(1);
    // After the cooldown (5 min after the firing), it fires again, once.
    clock.advance(5 * 60_000);
    for (const e of [...engines, restarted]) e.observe("tank", "water_level_percent", 3, clock.now());
    await Promise.all([...engines, restarted].map((e) => e.idle()));
    expect(created).toHaveLength(2);
    const runs = await service.listRuleRuns(FULL_ACCESS, create(ListRuleRunsRequestSchema, { parent: "rules/tank-low" }));
    expect(runs.runs.map((r) => [r.triggerDevice, r.triggerValue, r.targets.length])).toEqual([
      ["devices/tank", 3, 1],
      ["devices/tank", 5, 1],
    ]);
    await Promise.all([...engines, restarted].map((e) => e.stop()));
  });

  it("three schedulers racing a job rule start one job per occurrence, each over the matching devices", async () => {
    const clock = fakeClock("2026-02-02T00:59:00.000Z");
    const devices = createDeviceStore(pools[0]!);
    for (let i = 0; i < 25; i++) {
      await devices.insert(
        create(DeviceSchema, { name: `devices/jr-${i}`, uid: crypto.randomUUID(), labels: { wing: "east" }, kind: { case: "led", value: {} } }),
        clock.now(),
      );
    }
    const service = createRuleService({ rules: createRuleStore(pools[0]!), devices, clock });
    await service.createRule(
      FULL_ACCESS,
      create(CreateRuleRequestSchema, {
        ruleId: "east-hourly",
        rule: {
          trigger: { case: "cron", value: { expression: "0 0 * * * *", timeZone: "Europe/Paris" } },
          target: {
            case: "job",
            value: { command: on, target: { case: "selector", value: { filter: 'labels.wing = "east"' } }, rollout: { maxPerMinute: 100 } },
          },
        },
      }),
    );
    const started: string[][] = [[], [], []];
    const schedulers = pools.map((sql, i) => createScheduler({ rules: createRuleStore(sql), clock, log, onJobsStarted: (ids) => started[i]!.push(...ids) }));
    // Six hours: every instance ticks at once, twice per hour, shortly after each occurrence
    // (within the misfire grace) and half an hour later.
    for (let hour = 1; hour <= 6; hour++) {
      for (const at of [`0${hour}:00:20`, `0${hour}:30:00`]) {
        clock.advance(Date.parse(`2026-02-02T${at}.000Z`) - clock.now().getTime());
        await Promise.all(schedulers.map((s) => s.tick()));
      }
    }
    const sql = pools[0]!;
    const jobs = await sql`SELECT id, state, target_count FROM jobs WHERE id LIKE 'east-hourly-%' ORDER BY id`;
    // 01:00 to 06:00 on the hour: six occurrences, six jobs, named after them (in UTC).
    expect(jobs.map((j) => j.id)).toEqual(
      ["20260202t010000", "20260202t020000", "20260202t030000", "20260202t040000", "20260202t050000", "20260202t060000"].map((t) => `east-hourly-${t}`),
    );
    expect(jobs.every((j) => j.state === "RUNNING" && Number(j.target_count) === 25)).toBe(true);
    const runs = await sql`SELECT job_id, state FROM rule_runs WHERE rule_id = 'east-hourly' ORDER BY occurrence_time`;
    expect(runs.map((r) => [r.job_id, r.state])).toEqual(jobs.map((j) => [j.id, "FIRED"]));
    // Announced once each, by whichever instance committed it; and no task exists yet (the job runner rolls out).
    expect(started.flat().sort()).toEqual(jobs.map((j) => j.id));
    const [{ n }] = (await sql`SELECT count(*)::int AS n FROM tasks WHERE job_id LIKE 'east-hourly-%'`) as unknown as [{ n: number }];
    expect(n).toBe(0);
  });
});
