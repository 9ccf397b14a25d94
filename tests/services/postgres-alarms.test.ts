import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import pino from "pino";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AlarmSeverity } from "../../gen/tether/v1/alarm_pb.js";
import { DeviceSchema, ProductKind } from "../../gen/tether/v1/device_pb.js";
import { EventTrigger_Comparison as Comparison } from "../../gen/tether/v1/rule_pb.js";
import { CreateRuleRequestSchema } from "../../gen/tether/v1/rule_service_pb.js";
import { FULL_ACCESS } from "../../src/core/access/access.js";
import { createAlarmEngine } from "../../src/core/alarms/alarm-engine.js";
import type { CoreLogger } from "../../src/core/log.js";
import { createRuleService } from "../../src/core/rules/rule-service.js";
import { alarmNotificationTable } from "../../src/store/alarm-notification-table.js";
import { createAlarmStore } from "../../src/store/alarm-store.js";
import { createDeviceStore } from "../../src/store/device-store.js";
import { migrate } from "../../src/store/migrate.js";
import { createRuleStore } from "../../src/store/rule-store.js";
import { fakeClock } from "../helpers/fake-clock.js";
import { freshDatabase } from "../helpers/postgres.js";

const log = pino({ level: "silent" });
const quiet: CoreLogger = { debug() {}, info() {}, warn() {}, error() {} };
const MIN = 60_000;
let db: Awaited<ReturnType<typeof freshDatabase>>;
let pools: postgres.Sql[] = [];
beforeAll(async () => {
  db = await freshDatabase("tether_alarms");
  await migrate(db.url, log);
  // Three engines, three pools: as three Tether replicas on one database, racing for real.
  pools = [0, 1, 2].map(() => postgres(db.url, { max: 4, onnotice: () => {} }));
});
afterAll(async () => {
  await Promise.all(pools.map((p) => p.end()));
  await db?.drop();
});

describe("alarms on a real PostgreSQL", () => {
  it("three replicas evaluating the same streams raise one alarm per episode (1,000 episodes over 10 devices), clear each once, escalate once", async () => {
    const clock = fakeClock("2026-01-05T08:00:00.000Z");
    const devices = createDeviceStore(pools[0]!);
    const DEVICES = 10;
    const EPISODES = 100; // per device
    for (let i = 0; i < DEVICES; i++) {
      await devices.insert(
        create(DeviceSchema, { name: `devices/hot-${i}`, uid: crypto.randomUUID(), labels: { site: "a" }, kind: { case: "led", value: {} } }),
        clock.now(),
      );
    }
    const rules = createRuleService({ rules: createRuleStore(pools[0]!), devices, clock });
    await rules.createRule(
      FULL_ACCESS,
      create(CreateRuleRequestSchema, {
        ruleId: "hot",
        rule: {
          trigger: {
            case: "eventTrigger",
            value: { metric: "temperature_celsius", comparison: Comparison.GT, threshold: 30, forDuration: durationFromMs(MIN) },
          },
          target: { case: "selector", value: { kind: ProductKind.LED, labels: { site: "a" } } },
          alarm: { severity: AlarmSeverity.MAJOR, clearThreshold: 28, escalateAfter: durationFromMs(MIN) },
        },
      }),
    );
    const engines = pools.map((p) => createAlarmEngine({ alarms: createAlarmStore(p, alarmNotificationTable()), clock, log: quiet }));
    for (const e of engines) await e.refresh();
    const t0 = clock.now().getTime();
    for (let k = 0; k < EPISODES; k++) {
      const t = t0 + k * 5 * MIN;
      for (const [dt, value] of [
        [0, 31],
        [MIN, 33],
        [2 * MIN, 29],
        [3 * MIN, 20],
      ] as const) {
        clock.set(new Date(t + dt));
        for (let i = 0; i < DEVICES; i++)
          for (let r = 0; r < 3; r++) engines[(r + i + k) % 3]!.observe(`hot-${i}`, "temperature_celsius", value, new Date(t + dt));
      }
      if (k % 10 === 9) await Promise.all(engines.map((e) => e.idle()));
    }
    await Promise.all(engines.map((e) => e.idle()));
    const sql = pools[0]!;
    const [row] = await sql`
      SELECT count(*)::int AS n, count(DISTINCT (device_id, start_time))::int AS episodes,
             count(*) FILTER (WHERE state = 'CLEARED')::int AS cleared FROM alarms`;
    expect(row).toEqual({ n: DEVICES * EPISODES, episodes: DEVICES * EPISODES, cleared: DEVICES * EPISODES });
    const byType = await sql`SELECT type, count(*)::int AS n FROM alarm_notifications GROUP BY type ORDER BY type`;
    expect(byType.map((r) => [r.type, r.n])).toEqual([
      ["alarm.cleared", DEVICES * EPISODES],
      ["alarm.raised", DEVICES * EPISODES],
    ]);

    // One more episode left active on every device, then all three replicas' timers race.
    const t = t0 + EPISODES * 5 * MIN;
    for (const dt of [0, MIN]) {
      clock.set(new Date(t + dt));
      for (let i = 0; i < DEVICES; i++) for (const e of engines) e.observe(`hot-${i}`, "temperature_celsius", 35, new Date(t + dt));
    }
    await Promise.all(engines.map((e) => e.idle()));
    clock.set(new Date(t + 5 * MIN));
    await Promise.all([...engines, ...engines].map((e) => e.sweep()));
    const [esc] = await sql`SELECT count(*)::int AS n FROM alarm_notifications WHERE type = 'alarm.escalated'`;
    expect(esc!.n).toBe(DEVICES);
  }, 300_000);

  it("three replicas' presence sweeps raise an offline alarm once and clear it on reconnect", async () => {
    const clock = fakeClock("2026-02-01T08:00:00.000Z");
    const devices = createDeviceStore(pools[0]!);
    for (let i = 0; i < 5; i++) {
      await devices.insert(
        create(DeviceSchema, { name: `devices/far-${i}`, uid: crypto.randomUUID(), labels: { site: "far" }, kind: { case: "led", value: {} } }),
        clock.now(),
      );
      await devices.setPresence(`far-${i}`, { online: true }, clock.now());
    }
    const rules = createRuleService({ rules: createRuleStore(pools[0]!), devices, clock });
    await rules.createRule(
      FULL_ACCESS,
      create(CreateRuleRequestSchema, {
        ruleId: "gone",
        rule: {
          trigger: { case: "eventTrigger", value: { metric: "online", comparison: Comparison.LT, threshold: 1, forDuration: durationFromMs(10 * MIN) } },
          target: { case: "selector", value: { kind: ProductKind.LED, labels: { site: "far" } } },
          alarm: { severity: AlarmSeverity.CRITICAL },
        },
      }),
    );
    const engines = pools.map((p) => createAlarmEngine({ alarms: createAlarmStore(p, alarmNotificationTable()), clock, log: quiet }));
    for (let i = 0; i < 5; i++) await devices.setPresence(`far-${i}`, { online: false }, new Date(clock.now().getTime() + MIN));
    clock.set(new Date(clock.now().getTime() + 12 * MIN));
    await Promise.all([...engines, ...engines].map((e) => e.sweep()));
    const sql = pools[0]!;
    const active = await sql`SELECT device_id FROM alarms WHERE rule_id = 'gone' AND state = 'ACTIVE' ORDER BY device_id`;
    expect(active.map((r) => r.device_id)).toEqual(["far-0", "far-1", "far-2", "far-3", "far-4"]);
    await devices.setPresence("far-2", { online: true }, clock.now());
    await Promise.all(engines.map((e) => e.sweep()));
    const states = await sql`SELECT device_id, state FROM alarms WHERE rule_id = 'gone' ORDER BY device_id`;
    expect(states.map((r) => `${r.device_id} ${r.state}`)).toEqual(["far-0 ACTIVE", "far-1 ACTIVE", "far-2 CLEARED", "far-3 ACTIVE", "far-4 ACTIVE"]);
    const notes =
      await sql`SELECT type, count(*)::int AS n FROM alarm_notifications n JOIN alarms a ON a.id = n.alarm_id WHERE a.rule_id = 'gone' GROUP BY type ORDER BY type`;
    expect(notes.map((r) => [r.type, r.n])).toEqual([
      ["alarm.cleared", 1],
      ["alarm.raised", 5],
    ]);
  });
});
