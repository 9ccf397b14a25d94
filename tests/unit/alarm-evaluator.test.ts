import { describe, expect, it } from "vitest";
import { EventTrigger_Comparison as Comparison } from "../../gen/tether/v1/rule_pb.js";
import { type AlarmRuleCondition, createAlarmEvaluator } from "../../src/core/alarms/alarm-evaluator.js";
import { type AlarmChange, reviveAlarmChange } from "../../src/core/alarms/alarm-record.js";

const rule = (over: Partial<AlarmRuleCondition> = {}): AlarmRuleCondition => ({
  id: "r",
  version: "v1",
  metric: "m",
  comparison: Comparison.LT,
  threshold: 10,
  clearThreshold: 15,
  forMs: 2000,
  clearForMs: 0,
  devices: new Set(["d"]),
  ...over,
});
const at = (s: number) => new Date(Date.UTC(2026, 0, 1) + s * 1000);
const run = (ev: ReturnType<typeof createAlarmEvaluator>, stream: Array<[number, number]>) =>
  stream.flatMap(([s, v]) =>
    ev.observe("d", "m", v, at(s)).map((x) => `${x.kind}@${(x.time.getTime() - at(0).getTime()) / 1000} start ${(x.start.getTime() - at(0).getTime()) / 1000}`),
  );

describe("the alarm evaluator", () => {
  it("decides the same on every replica seeing the same stream: the episode starts at the first observation of the run", () => {
    const stream: Array<[number, number]> = [
      [0, 12],
      [1, 9],
      [2, 8],
      [3, 7],
      [4, 12],
      [5, 14],
      [6, 15],
      [7, 3],
      [9, 2],
    ];
    const a = createAlarmEvaluator();
    const b = createAlarmEvaluator();
    a.setRules([rule()]);
    b.setRules([rule()]);
    // LT 10 for 2 s from t=1 raises at 3; 12 and 14 are not yet >= 15 (hysteresis); 15 clears; a new episode from 7 raises at 9.
    const decided = run(a, stream);
    expect(decided).toEqual(["raise@3 start 1", "clear@6 start 1", "raise@9 start 7"]);
    expect(run(b, stream)).toEqual(decided);
  });

  it("ignores observations older than the last one, other devices and other metrics", () => {
    const ev = createAlarmEvaluator();
    ev.setRules([rule({ forMs: 0 })]);
    expect(ev.observe("d", "m", 5, at(10)).map((x) => x.kind)).toEqual(["raise"]);
    expect(ev.observe("d", "m", 20, at(9))).toEqual([]); // out of order: ignored
    expect(ev.observe("x", "m", 5, at(11))).toEqual([]);
    expect(ev.observe("d", "other", 20, at(11))).toEqual([]);
    expect(ev.observe("d", "m", 20, at(12)).map((x) => x.kind)).toEqual(["clear"]);
  });

  it("learns an active alarm from the database, and is corrected only if nothing moved since", () => {
    const ev = createAlarmEvaluator();
    ev.setRules([rule({ forMs: 0 })]);
    ev.setActive("r", "d", at(0), true);
    expect(ev.observe("d", "m", 20, at(5)).map((x) => x.kind)).toEqual(["clear"]);
    ev.setActive("r", "d", at(1), true); // observed already: left alone
    expect(ev.observe("d", "m", 20, at(6))).toEqual([]);
    const [raise] = ev.observe("d", "m", 1, at(7));
    ev.correct("r", "d", raise!.start, at(3)); // another replica's episode is the active one
    expect(ev.observe("d", "m", 20, at(8)).map((x) => x.start)).toEqual([at(3)]);
    ev.correct("r", "d", at(99), at(1)); // stale correction: ignored
    expect(ev.observe("d", "m", 20, at(9))).toEqual([]);
  });

  it("starts a changed rule over", () => {
    const ev = createAlarmEvaluator();
    ev.setRules([rule({ forMs: 0 })]);
    ev.observe("d", "m", 1, at(0));
    ev.setRules([rule({ forMs: 0, version: "v2" })]);
    expect(ev.observe("d", "m", 1, at(1)).map((x) => x.kind)).toEqual(["raise"]);
  });
});

describe("alarm changes across replicas", () => {
  it("come back from the feed's JSON with their dates", () => {
    const change: AlarmChange = {
      type: "alarm.cleared",
      alarm: {
        id: "0d9c4a7e-0000-4000-8000-000000000001",
        ruleId: "r",
        deviceId: "d",
        severity: 2,
        state: "CLEARED",
        acknowledged: false,
        metric: "m",
        description: "",
        startTime: at(1),
        raiseTime: at(3),
        raiseValue: 8,
        clearTime: at(6),
        clearValue: 15,
        acknowledgeComment: "",
        notifyOnClear: true,
        escalateAfterMs: 60_000,
        createTime: at(3),
        updateTime: at(6),
        revision: 2,
      },
    };
    expect(reviveAlarmChange(JSON.parse(JSON.stringify(change)) as AlarmChange)).toEqual(change);
  });
});
