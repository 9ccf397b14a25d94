import { create, toJson } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { CoffeeMachineReportedSchema, CoffeeMachineStatus } from "../../gen/tether/v1/coffee_machine_pb.js";
import { LedStateSchema } from "../../gen/tether/v1/led_pb.js";
import { EventTrigger_Comparison as Comparison } from "../../gen/tether/v1/rule_pb.js";
import { compare, createEventEvaluator, type EventRuleSpec } from "../../src/core/rules/event-evaluator.js";
import { reportedJsonMetrics, reportedMetrics } from "../../src/core/rules/reported-metrics.js";
import { fakeClock } from "../helpers/fake-clock.js";

const S = 1000;
const MIN = 60 * S;
const rule = (over: Partial<EventRuleSpec> = {}): EventRuleSpec => ({
  id: "low-water",
  version: "v1",
  metric: "water_level_percent",
  comparison: Comparison.LT,
  threshold: 10,
  forMs: 30 * S,
  cooldownMs: 5 * MIN,
  devices: new Set(["coffee-1", "coffee-2"]),
  ...over,
});

describe("event rule evaluator", () => {
  it("fires once the condition has held for the duration, then not again within the cooldown", () => {
    const ev = createEventEvaluator();
    ev.setRules([rule()]);
    const clock = fakeClock("2025-05-05T10:00:00Z");
    // A simulated machine reports every 10 s while its tank empties: 14, 12, 9, 8, 7 ... 0.
    const levels = [14, 12, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0];
    const fired: Array<[number, number]> = [];
    for (const level of levels) {
      const t = clock.advance(10 * S);
      for (const f of ev.observe("coffee-1", "water_level_percent", level, t)) fired.push([(t.getTime() - Date.parse("2025-05-05T10:00:00Z")) / S, f.value]);
    }
    // Below 10 from t=30 s; held 30 s at t=60 s; the cooldown keeps the next 60 s quiet.
    expect(fired).toEqual([[60, 6]]);
    // Still low 5 minutes after the firing: fires again, once.
    const later = ev.observe("coffee-1", "water_level_percent", 0, new Date(Date.parse("2025-05-05T10:01:00Z") + 5 * MIN));
    expect(later.map((f) => f.value)).toEqual([0]);
  });

  it("restarts the duration when the condition breaks", () => {
    const ev = createEventEvaluator();
    ev.setRules([rule()]);
    const at = (s: number) => new Date(Date.parse("2025-05-05T10:00:00Z") + s * S);
    expect(ev.observe("coffee-1", "water_level_percent", 5, at(0))).toEqual([]);
    expect(ev.observe("coffee-1", "water_level_percent", 5, at(20))).toEqual([]);
    expect(ev.observe("coffee-1", "water_level_percent", 50, at(25))).toEqual([]); // refilled
    expect(ev.observe("coffee-1", "water_level_percent", 5, at(40))).toEqual([]);
    expect(ev.observe("coffee-1", "water_level_percent", 5, at(60))).toEqual([]); // held only 20 s
    expect(ev.observe("coffee-1", "water_level_percent", 5, at(70))).toHaveLength(1);
  });

  it("keeps state per device, ignores other devices, other metrics and out-of-order samples", () => {
    const ev = createEventEvaluator();
    ev.setRules([rule({ forMs: 0 })]);
    const t = new Date("2025-05-05T10:00:00Z");
    expect(ev.observe("coffee-1", "water_level_percent", 3, t)).toHaveLength(1);
    expect(ev.observe("coffee-2", "water_level_percent", 3, t)).toHaveLength(1);
    expect(ev.observe("coffee-3", "water_level_percent", 3, t)).toEqual([]);
    expect(ev.observe("coffee-1", "bean_level_percent", 3, t)).toEqual([]);
    expect(ev.observe("coffee-1", "water_level_percent", 3, new Date(t.getTime() - 10 * MIN))).toEqual([]);
  });

  it("takes the cooldown from the database and retries after a failed firing", () => {
    const ev = createEventEvaluator();
    ev.setRules([rule({ forMs: 0 })]);
    const t0 = Date.parse("2025-05-05T10:00:00Z");
    // Another replica fired 1 minute ago: the cooldown runs until t0 + 4 min.
    ev.recordFire("low-water", "coffee-1", new Date(t0 - MIN));
    expect(ev.observe("coffee-1", "water_level_percent", 3, new Date(t0))).toEqual([]);
    const [f] = ev.observe("coffee-1", "water_level_percent", 3, new Date(t0 + 4 * MIN));
    expect(f?.previousFire?.getTime()).toBe(t0 - MIN);
    // That firing did not commit: restore, and the next observation fires.
    ev.recordFire("low-water", "coffee-1", f!.previousFire);
    expect(ev.observe("coffee-1", "water_level_percent", 3, new Date(t0 + 4 * MIN + S))).toHaveLength(1);
  });

  it("drops the state of a changed rule", () => {
    const ev = createEventEvaluator();
    ev.setRules([rule()]);
    ev.observe("coffee-1", "water_level_percent", 3, new Date("2025-05-05T10:00:00Z"));
    ev.setRules([rule({ version: "v2", threshold: 5 })]);
    expect(ev.observe("coffee-1", "water_level_percent", 3, new Date("2025-05-05T10:00:30Z"))).toEqual([]); // the 30 s start over
    expect(ev.size()).toBe(1);
  });

  it("compares with every operator", () => {
    expect([Comparison.LT, Comparison.LE, Comparison.GT, Comparison.GE, Comparison.EQ, Comparison.NE].map((op) => compare(10, op, 10))).toEqual([
      false,
      true,
      false,
      true,
      true,
      false,
    ]);
  });
});

describe("reported state as metrics", () => {
  it("flattens numeric fields by proto path, zero values included when the schema is known", () => {
    const reported = create(CoffeeMachineReportedSchema, {
      power: true,
      status: CoffeeMachineStatus.IDLE,
      waterLevelPercent: 0,
      beanLevelPercent: 40,
      currentBrew: { progressPercent: 30 },
    });
    const json = toJson(CoffeeMachineReportedSchema, reported);
    const withSchema = Object.fromEntries(reportedJsonMetrics(json, CoffeeMachineReportedSchema).map((m) => [m.metric, m.value]));
    expect(withSchema).toMatchObject({
      power: 1,
      status: CoffeeMachineStatus.IDLE,
      water_level_percent: 0,
      bean_level_percent: 40,
      "current_brew.progress_percent": 30,
    });
    // Plain JSON: protobuf JSON omits the zero, so the schema-less form cannot see it.
    const plain = Object.fromEntries(reportedJsonMetrics(json).map((m) => [m.metric, m.value]));
    expect(plain).toMatchObject({ power: 1, bean_level_percent: 40, "current_brew.progress_percent": 30 });
    expect("water_level_percent" in plain).toBe(false);
    // Optional fields that are unset yield nothing.
    expect(reportedMetrics(LedStateSchema, create(LedStateSchema, { color: { red: 255 } })).map((m) => m.metric)).toEqual([
      "mode",
      "color.red",
      "color.green",
      "color.blue",
    ]);
  });
});
