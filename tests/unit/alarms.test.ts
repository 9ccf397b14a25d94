import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { afterEach, describe, expect, it } from "vitest";
import { AlarmSeverity, Alarm_State } from "../../gen/tether/v1/alarm_pb.js";
import { ProductKind } from "../../gen/tether/v1/device_pb.js";
import { EventTrigger_Comparison as Comparison, RuleSchema } from "../../gen/tether/v1/rule_pb.js";
import { productByKindName } from "../../src/core/products/index.js";
import { createRuleStore } from "../../src/store/rule-store.js";
import { accessFromRights, FULL_ACCESS } from "../../src/core/access/access.js";
import type { Role } from "../../src/core/access/roles.js";
import { InvalidArgumentError, PermissionDeniedError } from "../../src/core/errors.js";
import { type AlarmHarness, wireAlarms } from "../helpers/alarm-harness.js";

const MIN = 60_000;
const T0 = Date.parse("2026-01-05T10:00:00Z");
let h: AlarmHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** `temperature_celsius > 30 for 2m`, clearing only at `<= 28`. */
const hotRule = (device: string, alarm: Record<string, unknown> = {}) => ({
  trigger: {
    case: "eventTrigger" as const,
    value: { metric: "temperature_celsius", comparison: Comparison.GT, threshold: 30, forDuration: durationFromMs(2 * MIN) },
  },
  target: { case: "device" as const, value: `devices/${device}` },
  alarm: { severity: AlarmSeverity.MAJOR, clearThreshold: 28, description: "too hot", ...alarm },
});

function as(user: string, devices: Record<string, Role>) {
  return accessFromRights({ caller: { user, admin: false, groups: [] }, devices: new Map(Object.entries(devices)), selectors: [] });
}

/** Feeds one observation to every replica, at its own time (the clock follows the stream). */
function observe(x: AlarmHarness, device: string, value: number, at: number, order = 0) {
  x.core.clock.set(new Date(at));
  const n = x.replicas.length;
  for (let i = 0; i < n; i++) x.replicas[(i + order) % n]!.observe(device, "temperature_celsius", value, new Date(at));
}

async function list(x: AlarmHarness) {
  return (await x.alarms.listAlarms(FULL_ACCESS, { $typeName: "tether.v1.ListAlarmsRequest", pageSize: 1000, pageToken: "" })).alarms;
}

describe("alarm rules raise once per episode, across replicas", () => {
  it("three replicas over one database raise exactly one alarm per episode in 1,000 episodes, and clear each once", async () => {
    h = await wireAlarms(3);
    await h.addLed("hot-1");
    await h.createRule("hot", hotRule("hot-1"));
    const EPISODES = 1000;
    for (let e = 0; e < EPISODES; e++) {
      const t = T0 + e * 10 * MIN;
      // Each replica sees the stream in its own interleaving with the others.
      observe(h, "hot-1", 31, t, e);
      observe(h, "hot-1", 32, t + MIN, e + 1);
      observe(h, "hot-1", 31, t + 2 * MIN, e + 2); // held 2 min: raise
      observe(h, "hot-1", 29, t + 3 * MIN, e); // between the thresholds: stays active
      observe(h, "hot-1", 27, t + 4 * MIN, e + 1); // <= 28: clear
      if (e % 50 === 49) await h.idle();
    }
    await h.idle();
    const [{ n, starts, cleared }] = await h.core.sql`
      SELECT count(*)::int AS n, count(DISTINCT start_time)::int AS starts, count(*) FILTER (WHERE state = 'CLEARED')::int AS cleared FROM alarms`;
    expect({ n, starts, cleared }).toEqual({ n: EPISODES, starts: EPISODES, cleared: EPISODES });
    const [{ bad }] = await h.core.sql`
      SELECT count(*)::int AS bad FROM alarms WHERE start_time <> raise_time - interval '2 minutes' OR clear_time <> raise_time + interval '2 minutes'`;
    expect(bad).toBe(0);
    const notes = await h.notifications();
    expect(notes.filter((x) => x.type === "alarm.raised")).toHaveLength(EPISODES);
    expect(notes.filter((x) => x.type === "alarm.cleared")).toHaveLength(EPISODES);
    expect(notes).toHaveLength(2 * EPISODES);
    // Watchers saw each change once, whichever replica made it.
    expect(h.published).toHaveLength(2 * EPISODES);
  }, 180_000);

  it("a late replica's raise of an episode already raised and cleared does nothing", async () => {
    h = await wireAlarms(2);
    await h.addLed("hot-1");
    await h.createRule("hot", hotRule("hot-1"));
    const [a, b] = h.replicas;
    const at = (m: number) => new Date(T0 + m * MIN);
    h.core.clock.set(at(0));
    for (const [m, v] of [
      [0, 31],
      [2, 31],
      [4, 27],
    ] as const)
      a!.observe("hot-1", "temperature_celsius", v, at(m));
    await h.idle();
    // Replica b sees the same episode only now: its raise hits the episode key.
    for (const [m, v] of [
      [0, 31],
      [2, 31],
    ] as const)
      b!.observe("hot-1", "temperature_celsius", v, at(m));
    await h.idle();
    const alarms = await list(h);
    expect(alarms.map((x) => x.state)).toEqual([Alarm_State.CLEARED]);
    expect((await h.notifications()).map((x) => x.type)).toEqual(["alarm.raised", "alarm.cleared"]);
  });
});

describe("alarm lifecycle", () => {
  it("clears with hysteresis, and never repeats while active", async () => {
    h = await wireAlarms();
    await h.addLed("hot-1");
    await h.createRule("hot", hotRule("hot-1"));
    const e = h.replicas[0]!;
    const step = async (m: number, v: number) => {
      h!.core.clock.set(new Date(T0 + m * MIN));
      e.observe("hot-1", "temperature_celsius", v, new Date(T0 + m * MIN));
      await e.idle();
      return list(h!);
    };
    expect(await step(0, 31)).toEqual([]);
    expect(await step(1, 30)).toEqual([]); // the run broke: the "for" restarts
    expect(await step(2, 31)).toEqual([]);
    const raised = await step(4, 35);
    expect(raised.map((a) => [a.state, a.raiseValue, a.startTime?.seconds])).toEqual([[Alarm_State.ACTIVE, 35, BigInt((T0 + 2 * MIN) / 1000)]]);
    for (const [m, v] of [
      [5, 40],
      [6, 29],
      [7, 31],
      [8, 28.5],
    ] as const)
      expect((await step(m, v)).map((a) => a.state)).toEqual([Alarm_State.ACTIVE]);
    expect((await step(9, 28)).map((a) => [a.state, a.clearValue])).toEqual([[Alarm_State.CLEARED, 28]]);
    expect((await h.notifications()).map((x) => x.type)).toEqual(["alarm.raised", "alarm.cleared"]);
  });

  it("waits for clear_for before clearing", async () => {
    h = await wireAlarms();
    await h.addLed("hot-1");
    await h.createRule("hot", hotRule("hot-1", { clearFor: durationFromMs(3 * MIN) }));
    const e = h.replicas[0]!;
    for (const [m, v] of [
      [0, 31],
      [2, 31],
      [3, 20],
      [4, 31],
      [5, 20],
      [7, 20],
    ] as const) {
      h.core.clock.set(new Date(T0 + m * MIN));
      e.observe("hot-1", "temperature_celsius", v, new Date(T0 + m * MIN));
    }
    await e.idle();
    expect((await list(h)).map((a) => a.state)).toEqual([Alarm_State.ACTIVE]);
    h.core.clock.set(new Date(T0 + 8 * MIN));
    e.observe("hot-1", "temperature_celsius", 20, new Date(T0 + 8 * MIN));
    await e.idle();
    expect((await list(h)).map((a) => [a.state, a.clearTime?.seconds])).toEqual([[Alarm_State.CLEARED, BigInt((T0 + 8 * MIN) / 1000)]]);
  });

  it("follows the notification policy: no clear notification when off, one escalation, one acknowledgement", async () => {
    h = await wireAlarms(3);
    await h.addLed("hot-1");
    await h.createRule("hot", hotRule("hot-1", { notifyOnClear: false, escalateAfter: durationFromMs(5 * MIN) }));
    // Escalation counts from when the alarm was recorded (the clock when the raise committed).
    for (const m of [0, 2]) observe(h, "hot-1", 33, T0 + m * MIN);
    await h.idle();
    for (const m of [3, 4]) observe(h, "hot-1", 33, T0 + m * MIN);
    await h.idle();
    const [alarm] = await list(h);
    expect((await h.notifications()).map((x) => x.type)).toEqual(["alarm.raised"]);
    h.core.clock.set(new Date(T0 + 6 * MIN));
    for (const r of h.replicas) await r.sweep();
    expect((await h.notifications()).map((x) => x.type)).toEqual(["alarm.raised"]); // 4 min after raising: not yet
    h.core.clock.set(new Date(T0 + 8 * MIN));
    await Promise.all(h.replicas.map((r) => r.sweep()));
    for (const r of h.replicas) await r.sweep();
    expect((await h.notifications()).map((x) => x.type)).toEqual(["alarm.raised", "alarm.escalated"]);
    const acked = await h.alarms.acknowledgeAlarm(FULL_ACCESS, {
      $typeName: "tether.v1.AcknowledgeAlarmRequest",
      name: alarm!.name,
      comment: "on it",
      etag: "",
    });
    expect([acked.acknowledged, acked.acknowledger, acked.acknowledgeComment, acked.state]).toEqual([true, "services/tether", "on it", Alarm_State.ACTIVE]);
    observe(h, "hot-1", 20, T0 + 9 * MIN);
    await h.idle();
    expect((await list(h)).map((a) => [a.state, a.acknowledged])).toEqual([[Alarm_State.CLEARED, true]]);
    expect((await h.notifications()).map((x) => x.type)).toEqual(["alarm.raised", "alarm.escalated", "alarm.acknowledged"]);
    expect(h.published.map((c) => c.type)).toEqual(["alarm.raised", "alarm.escalated", "alarm.acknowledged", "alarm.cleared"]);
  });

  it("an acknowledged alarm is not escalated; notify_on_raise false records no raise", async () => {
    h = await wireAlarms();
    await h.addLed("hot-1");
    await h.createRule("hot", hotRule("hot-1", { notifyOnRaise: false, escalateAfter: durationFromMs(MIN) }));
    for (const m of [0, 2]) observe(h, "hot-1", 33, T0 + m * MIN);
    await h.idle();
    const [alarm] = await list(h);
    await h.alarms.acknowledgeAlarm(FULL_ACCESS, { $typeName: "tether.v1.AcknowledgeAlarmRequest", name: alarm!.name, comment: "", etag: alarm!.etag });
    h.core.clock.set(new Date(T0 + 30 * MIN));
    await h.replicas[0]!.sweep();
    expect((await h.notifications()).map((x) => x.type)).toEqual(["alarm.acknowledged"]);
  });
});

describe("rights follow the device's", () => {
  it("a viewer sees and counts, but may not acknowledge (PERMISSION_DENIED); an operator may; a stranger sees nothing", async () => {
    h = await wireAlarms();
    await h.addLed("hot-1");
    await h.createRule("hot", hotRule("hot-1"));
    for (const m of [0, 2]) observe(h, "hot-1", 33, T0 + m * MIN);
    await h.idle();
    const [alarm] = await list(h);
    const viewer = as("vic", { "hot-1": "viewer" });
    expect((await h.alarms.getAlarm(viewer, alarm!.name)).name).toBe(alarm!.name);
    const count = await h.alarms.countAlarms(viewer, { $typeName: "tether.v1.CountAlarmsRequest" });
    expect([count.total, count.counts.find((c) => c.severity === AlarmSeverity.MAJOR)?.count]).toEqual([1n, 1n]);
    const ack = (access: ReturnType<typeof as>, etag = "") =>
      h!.alarms.acknowledgeAlarm(access, { $typeName: "tether.v1.AcknowledgeAlarmRequest", name: alarm!.name, comment: "seen", etag });
    await expect(ack(viewer)).rejects.toThrow(PermissionDeniedError);
    await expect(ack(viewer)).rejects.toThrow(/alarm.acknowledge on devices\/hot-1 needs the operator role; vic is viewer/);
    const stranger = as("sam", {});
    await expect(h.alarms.getAlarm(stranger, alarm!.name)).rejects.toThrow(/not found/);
    expect((await h.alarms.listAlarms(stranger, { $typeName: "tether.v1.ListAlarmsRequest", pageSize: 0, pageToken: "" })).alarms).toEqual([]);
    await expect(ack(as("olga", { "hot-1": "operator" }), '"9-nope"')).rejects.toThrow(/etag mismatch/);
    const tooLong = h.alarms.acknowledgeAlarm(FULL_ACCESS, {
      $typeName: "tether.v1.AcknowledgeAlarmRequest",
      name: alarm!.name,
      comment: "x".repeat(1025),
      etag: "",
    });
    await expect(tooLong).rejects.toThrow(/comment: must be at most 1024 characters/);
    await expect(h.alarms.getAlarm(FULL_ACCESS, "alarms/nope")).rejects.toThrow(/name: "alarms\/nope" is not an alarm name/);
    const bySeverity = h.alarms.countAlarms(FULL_ACCESS, {
      $typeName: "tether.v1.CountAlarmsRequest",
      filter: { $typeName: "tether.v1.AlarmFilter", device: "", rule: "", severity: AlarmSeverity.MAJOR, state: 0 },
    });
    await expect(bySeverity).rejects.toThrow(/filter.severity: must be unset/);
    const badFilter = h.alarms.listAlarms(FULL_ACCESS, {
      $typeName: "tether.v1.ListAlarmsRequest",
      pageSize: 0,
      pageToken: "",
      filter: { $typeName: "tether.v1.AlarmFilter", device: "kitchen", rule: "rules/Bad", severity: 9 as AlarmSeverity, state: 7 as Alarm_State },
    });
    await expect(badFilter).rejects.toThrow(/filter.device: .*filter.rule: .*filter.severity: unknown AlarmSeverity 9; filter.state: unknown Alarm.State 7/);
    const done = await ack(as("olga", { "hot-1": "operator" }));
    expect(done.acknowledger).toBe("users/olga");
    await expect(ack(as("olga", { "hot-1": "operator" }))).rejects.toThrow(/already acknowledged by users\/olga/);
  });
});

describe("presence alarms", () => {
  it("raises offline-for by the sweep, once across replicas, and clears on reconnect", async () => {
    h = await wireAlarms(3);
    await h.addLed("far-1", { site: "north" });
    await h.addLed("far-2", { site: "north" });
    await h.createRule("gone", {
      trigger: { case: "eventTrigger", value: { metric: "online", comparison: Comparison.EQ, threshold: 0, forDuration: durationFromMs(10 * MIN) } },
      target: { case: "selector", value: { kind: ProductKind.LED, labels: { site: "north" } } },
      alarm: { severity: AlarmSeverity.CRITICAL },
    });
    const devices = h.core.stores.devices;
    await devices.setPresence("far-1", { online: true }, new Date(T0));
    await devices.setPresence("far-2", { online: true }, new Date(T0));
    await devices.setPresence("far-1", { online: false }, new Date(T0 + MIN));
    const sweepAll = async (m: number) => {
      h!.core.clock.set(new Date(T0 + m * MIN));
      await Promise.all(h!.replicas.map((r) => r.sweep()));
      return list(h!);
    };
    // Offline is measured from the last sign of life (T0, the connect: a disconnect is no sign of life).
    expect(await sweepAll(9)).toEqual([]); // not seen for 9 min
    const raised = await sweepAll(11);
    expect(raised.map((a) => [a.device, a.metric, a.state, a.severity, a.startTime?.seconds])).toEqual([
      ["devices/far-1", "online", Alarm_State.ACTIVE, AlarmSeverity.CRITICAL, BigInt(T0 / 1000)],
    ]);
    expect(await sweepAll(30)).toHaveLength(1); // still offline: no repeat
    await devices.setPresence("far-1", { online: true }, new Date(T0 + 31 * MIN));
    const cleared = await sweepAll(31);
    expect(cleared.map((a) => [a.state, a.clearTime?.seconds])).toEqual([[Alarm_State.CLEARED, BigInt((T0 + 31 * MIN) / 1000)]]);
    // A new outage is a new episode.
    await devices.setPresence("far-1", { online: false }, new Date(T0 + 40 * MIN));
    expect((await sweepAll(51)).map((a) => a.state)).toEqual([Alarm_State.ACTIVE, Alarm_State.CLEARED]);
    expect((await h.notifications()).map((x) => x.type)).toEqual(["alarm.raised", "alarm.cleared", "alarm.raised"]);
  });
});

describe("bad input is named", () => {
  const refuses = async (rule: Parameters<AlarmHarness["createRule"]>[1], field: string, message: RegExp) => {
    const err = await h!.createRule("bad", rule).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    const v = (err as InvalidArgumentError).violations.find((x) => x.field === field);
    expect(v?.description, JSON.stringify((err as InvalidArgumentError).violations)).toMatch(message);
  };

  it("refuses an unknown metric, an alarm with a command, online on a task rule, and thresholds on the wrong side", async () => {
    h = await wireAlarms();
    await h.addLed("hot-1");
    const base = hotRule("hot-1");
    await refuses(
      { ...base, trigger: { case: "eventTrigger", value: { metric: "temperature_celcius", comparison: Comparison.GT, threshold: 30 } } },
      "rule.event_trigger.metric",
      /"temperature_celcius" is not a metric of LEDs \(devices\/hot-1 is one\) \(did you mean temperature_celsius\?\)/,
    );
    await refuses(
      { ...base, command: { kind: { case: "led", value: { action: { case: "setPower", value: false } } } } },
      "rule.command",
      /must be unset for an alarm rule/,
    );
    await refuses(
      {
        trigger: { case: "eventTrigger", value: { metric: "online", comparison: Comparison.EQ, threshold: 0 } },
        target: base.target,
        command: { kind: { case: "led", value: { action: { case: "setPower", value: false } } } },
      },
      "rule.event_trigger.metric",
      /online is the presence metric of alarm rules/,
    );
    await refuses({ ...base, alarm: { ...base.alarm, clearThreshold: 31 } }, "rule.alarm.clear_threshold", /must be at most the threshold \(30\)/);
    await refuses({ ...base, alarm: { clearThreshold: 28 } }, "rule.alarm.severity", /is required/);
    await refuses({ ...base, trigger: { case: "cron", value: { expression: "0 * * * * *" } } }, "rule.cron", /needs an event_trigger/);
    await refuses(
      { ...base, trigger: { case: "eventTrigger", value: { metric: "online", comparison: Comparison.EQ, threshold: 1 } } },
      "rule.event_trigger",
      /must hold for 0 and not for 1/,
    );
  });
});

describe("alarm rules among rules", () => {
  it("never fire tasks, watch reported state, page newest first, and stay alarm rules on update", async () => {
    h = await wireAlarms();
    await h.addLed("lamp-1");
    await h.createRule("bright", {
      trigger: { case: "eventTrigger", value: { metric: "brightness", comparison: Comparison.GE, threshold: 90 } },
      target: { case: "device", value: "devices/lamp-1" },
      alarm: { severity: AlarmSeverity.WARNING },
    });
    expect((await createRuleStore(h.core.sql).eventRules()).map((v) => v.rule.id)).toEqual([]);
    const e = h.replicas[0]!;
    for (let i = 0; i < 3; i++) {
      for (const b of [95, 10]) {
        h.core.clock.set(new Date(T0 + (i * 2 + (b === 10 ? 1 : 0)) * MIN));
        e.observeReportedState("lamp-1", { brightness: b }, productByKindName("led")!.reportedSchema, h.core.clock.now());
      }
    }
    await e.idle();
    const page = (token = "") =>
      h!.alarms.listAlarms(FULL_ACCESS, {
        $typeName: "tether.v1.ListAlarmsRequest",
        pageSize: 2,
        pageToken: token,
        filter: { $typeName: "tether.v1.AlarmFilter", device: "devices/lamp-1", rule: "", severity: 0, state: Alarm_State.CLEARED },
      });
    const first = await page();
    const second = await page(first.nextPageToken);
    expect([...first.alarms, ...second.alarms].map((a) => a.raiseTime?.seconds)).toEqual([4, 2, 0].map((m) => BigInt((T0 + m * MIN) / 1000)));
    expect(second.nextPageToken).toBe("");
    const [{ n }] = await h.core.sql`SELECT count(*)::int AS n FROM tasks`;
    expect(n).toBe(0);
    const updated = await h.rules.updateRule(FULL_ACCESS, {
      $typeName: "tether.v1.UpdateRuleRequest",
      rule: create(RuleSchema, { name: "rules/bright", alarm: { severity: AlarmSeverity.CRITICAL } }),
      updateMask: { $typeName: "google.protobuf.FieldMask", paths: ["alarm"] },
    });
    expect(updated.alarm?.severity).toBe(AlarmSeverity.CRITICAL);
    await h.createRule("task-rule", {
      trigger: { case: "eventTrigger", value: { metric: "brightness", comparison: Comparison.GE, threshold: 90 } },
      target: { case: "device", value: "devices/lamp-1" },
      command: { kind: { case: "led", value: { action: { case: "setPower", value: false } } } },
    });
    await expect(
      h.rules.updateRule(FULL_ACCESS, {
        $typeName: "tether.v1.UpdateRuleRequest",
        rule: create(RuleSchema, { name: "rules/task-rule", alarm: { severity: AlarmSeverity.CRITICAL } }),
        updateMask: { $typeName: "google.protobuf.FieldMask", paths: ["alarm", "command"] },
      }),
    ).rejects.toThrow(InvalidArgumentError);
  });
});
