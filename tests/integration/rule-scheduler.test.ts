import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { create } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeviceSchema } from "../../gen/tether/v1/device_pb.js";
import { Rule_MisfirePolicy as MisfirePolicy, RuleRun_State as RunState } from "../../gen/tether/v1/rule_pb.js";
import { CreateRuleRequestSchema, ListRuleRunsRequestSchema } from "../../gen/tether/v1/rule_service_pb.js";
import { createRuleService, type RuleService } from "../../src/core/rules/rule-service.js";
import { createScheduler } from "../../src/core/rules/scheduler.js";
import type { TaskRecord } from "../../src/core/tasks/task-record.js";
import { type Database, openDatabase } from "../../src/store/database.js";
import { createDeviceStore } from "../../src/store/device-store.js";
import { createRuleStore } from "../../src/store/rule-store.js";
import { type FakeClock, fakeClock } from "../helpers/fake-clock.js";
import { FULL_ACCESS } from "../../src/core/access/access.js";

/**
 * The real scheduler and rule store on the embedded database (PGlite), with a fake clock that
 * jumps over days, daylight-saving changes and downtime.
 */
const log = pino({ level: "silent" });
let dir: string;
let db: Database;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "tether-rules-"));
  db = await openDatabase({ dataDir: dir, maxConnections: 1, log });
  const devices = createDeviceStore(db.sql);
  for (const id of ["dst-led", "skip-led", "once-led"]) {
    await devices.insert(
      create(DeviceSchema, { name: `devices/${id}`, uid: crypto.randomUUID(), deliveryPolicy: { maxPendingTasks: 10_000 }, kind: { case: "led", value: {} } }),
      new Date(),
    );
  }
});
afterAll(async () => {
  await db?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const on = { kind: { case: "led" as const, value: { action: { case: "setPower" as const, value: true } } } };

function setup(clock: FakeClock) {
  const created: TaskRecord[] = [];
  const rules = createRuleStore(db.sql);
  const service = createRuleService({ rules, devices: createDeviceStore(db.sql), clock });
  const scheduler = createScheduler({ rules, clock, log, onTasksCreated: (t) => created.push(...t) });
  return { service, scheduler, created };
}

/** Moves the clock to `to` in steps, ticking after each (no ticks while `down`). */
async function run(clock: FakeClock, scheduler: ReturnType<typeof createScheduler>, to: string, stepMs: number, down?: [string, string]) {
  const end = Date.parse(to);
  while (clock.now().getTime() < end) {
    const now = clock.advance(Math.min(stepMs, end - clock.now().getTime())).getTime();
    if (down && now >= Date.parse(down[0]) && now < Date.parse(down[1])) continue;
    await scheduler.tick();
  }
}

async function runs(service: RuleService, id: string) {
  const res = await service.listRuleRuns(FULL_ACCESS, create(ListRuleRunsRequestSchema, { parent: `rules/${id}`, pageSize: 1000 }));
  return res.runs.reverse();
}

describe("scheduler with a fake clock on the embedded database", () => {
  it("fires a 02:30 Europe/Paris rule once a day across spring forward and fall back", async () => {
    const clock = fakeClock("2025-03-28T12:00:00Z");
    const { service, scheduler, created } = setup(clock);
    await service.createRule(
      FULL_ACCESS,
      create(CreateRuleRequestSchema, {
        ruleId: "dst",
        rule: {
          trigger: { case: "cron", value: { expression: "0 30 2 * * *", timeZone: "Europe/Paris" } },
          target: { case: "device", value: "devices/dst-led" },
          command: on,
        },
      }),
    );
    await run(clock, scheduler, "2025-04-01T12:00:00Z", 5 * 60_000);
    clock.set("2025-10-24T12:00:00Z");
    // Months passed without a tick: SKIP records them once; then the fall-back days run normally.
    await scheduler.tick();
    await run(clock, scheduler, "2025-10-28T12:00:00Z", 5 * 60_000);
    const all = await runs(service, "dst");
    const fired = all.filter((r) => r.state === RunState.FIRED).map((r) => timestampDate(r.occurrenceTime!).toISOString());
    expect(fired).toEqual([
      "2025-03-29T01:30:00.000Z",
      "2025-03-30T01:00:00.000Z", // 02:30 did not exist: 03:00 CEST
      "2025-03-31T00:30:00.000Z",
      "2025-04-01T00:30:00.000Z",
      "2025-10-25T00:30:00.000Z",
      "2025-10-26T00:30:00.000Z", // the first 02:30 only
      "2025-10-27T01:30:00.000Z",
      "2025-10-28T01:30:00.000Z",
    ]);
    expect(created.filter((t) => t.deviceId === "dst-led")).toHaveLength(8);
    const skipped = all.filter((r) => r.state === RunState.SKIPPED);
    expect(skipped).toHaveLength(1);
    expect(skipped[0]!.missedOccurrences).toBe(206); // 2025-04-02 … 2025-10-24
    expect(skipped[0]!.stateReason).toMatch(/skipped 206 occurrences missed during downtime.*misfire policy SKIP/);
  });

  it("after downtime across 3 occurrences, SKIP fires none and FIRE_ONCE fires one", async () => {
    const clock = fakeClock("2025-05-05T10:59:00Z");
    const { service, scheduler, created } = setup(clock);
    for (const [id, policy] of [
      ["skip", MisfirePolicy.SKIP],
      ["once", MisfirePolicy.FIRE_ONCE],
    ] as const) {
      await service.createRule(
        FULL_ACCESS,
        create(CreateRuleRequestSchema, {
          ruleId: `hourly-${id}`,
          rule: {
            trigger: { case: "cron", value: { expression: "0 0 * * * *", timeZone: "UTC" } },
            target: { case: "device", value: `devices/${id}-led` },
            command: on,
            misfirePolicy: policy,
          },
        }),
      );
    }
    // 11:00 fires; Tether is down 11:30–14:30 (12:00, 13:00, 14:00 missed); 15:00 fires.
    await run(clock, scheduler, "2025-05-05T15:00:30Z", 30_000, ["2025-05-05T11:30:00Z", "2025-05-05T14:30:00Z"]);
    const summary = async (id: string) =>
      (await runs(service, id)).map((r) => [
        timestampDate(r.occurrenceTime!).toISOString().slice(11, 16),
        RunState[r.state],
        r.missedOccurrences,
        r.targets.length,
      ]);
    expect(await summary("hourly-skip")).toEqual([
      ["11:00", "FIRED", 0, 1],
      ["14:00", "SKIPPED", 3, 0],
      ["15:00", "FIRED", 0, 1],
    ]);
    expect(await summary("hourly-once")).toEqual([
      ["11:00", "FIRED", 0, 1],
      ["14:00", "FIRED", 2, 1],
      ["15:00", "FIRED", 0, 1],
    ]);
    expect(created.filter((t) => t.deviceId === "skip-led")).toHaveLength(2);
    expect(created.filter((t) => t.deviceId === "once-led")).toHaveLength(3);
    const late = (await runs(service, "hourly-once"))[1]!;
    expect(late.stateReason).toMatch(/fired 1800 s late after downtime, once for this and 2 earlier missed occurrences/);
    const rule = await service.getRule(FULL_ACCESS, "rules/hourly-skip");
    expect(timestampDate(rule.nextFireTime!).toISOString()).toBe("2025-05-05T16:00:00.000Z");
  });
});
