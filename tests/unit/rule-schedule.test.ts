import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { ProductKind } from "../../gen/tether/v1/device_pb.js";
import { RuleSchema } from "../../gen/tether/v1/rule_pb.js";
import { Violations } from "../../src/core/errors.js";
import { misfireReason, planDue } from "../../src/core/rules/misfire.js";
import type { MisfirePolicy } from "../../src/core/rules/rule-record.js";
import { parseRule } from "../../src/core/rules/rule-validation.js";
import { nextOccurrence, nextOccurrences, type ScheduleSpec } from "../../src/core/rules/schedule.js";
import { fakeClock } from "../helpers/fake-clock.js";

const cron = (expression: string, timeZone = "Europe/Paris"): ScheduleSpec => ({ trigger: { kind: "cron", expression, timeZone } });
const iso = (d: Date) => d.toISOString();

/**
 * What a scheduler does, reduced to the pure decisions: a fake clock moves in `stepMs` steps (not
 * at all while "down"), and at each step every due occurrence goes through planDue.
 */
function drive(spec: ScheduleSpec, policy: MisfirePolicy, from: string, to: string, opts: { stepMs?: number; down?: [string, string] } = {}) {
  const clock = fakeClock(from);
  const end = new Date(to).getTime();
  const down = opts.down?.map((t) => new Date(t).getTime());
  let next = nextOccurrence(spec, new Date(clock.now().getTime() - 1));
  const runs: Array<{ action: string; occurrence: string; missed: number; at: string }> = [];
  while (clock.now().getTime() <= end) {
    const now = clock.now();
    const isDown = down && now.getTime() >= down[0]! && now.getTime() < down[1]!;
    while (!isDown && next && next.getTime() <= now.getTime()) {
      const plan = planDue(spec, policy, next, now);
      if (plan.run) runs.push({ action: plan.run.action, occurrence: iso(plan.run.occurrence), missed: plan.run.missed, at: iso(now) });
      next = plan.next;
    }
    clock.advance(opts.stepMs ?? 10_000);
  }
  return runs;
}

describe("cron occurrences in a time zone across daylight saving time (Europe/Paris)", () => {
  it("spring forward (2025-03-30, 02:00 → 03:00): a 02:30 daily rule fires once, at 03:00 CEST, that day", () => {
    const runs = drive(cron("0 30 2 * * *"), "skip", "2025-03-28T12:00:00Z", "2025-04-01T12:00:00Z");
    expect(runs.map((r) => r.occurrence)).toEqual([
      "2025-03-29T01:30:00.000Z", // 02:30 CET
      "2025-03-30T01:00:00.000Z", // 02:30 does not exist: 03:00 CEST, right after the jump
      "2025-03-31T00:30:00.000Z", // 02:30 CEST
      "2025-04-01T00:30:00.000Z",
    ]);
    expect(runs.every((r) => r.action === "fire" && r.missed === 0)).toBe(true);
  });

  it("fall back (2025-10-26, 03:00 → 02:00): a 02:30 daily rule fires once, at the first 02:30 (CEST), never twice", () => {
    const runs = drive(cron("0 30 2 * * *"), "skip", "2025-10-24T12:00:00Z", "2025-10-28T12:00:00Z");
    expect(runs.map((r) => r.occurrence)).toEqual([
      "2025-10-25T00:30:00.000Z", // 02:30 CEST
      "2025-10-26T00:30:00.000Z", // first 02:30 (CEST); the second 02:30 (CET, 01:30Z) does not fire
      "2025-10-27T01:30:00.000Z", // 02:30 CET
      "2025-10-28T01:30:00.000Z",
    ]);
    const perLocalDay = new Map<string, number>();
    for (const r of runs) {
      const day = new Date(r.occurrence).toLocaleDateString("en-CA", { timeZone: "Europe/Paris" });
      perLocalDay.set(day, (perLocalDay.get(day) ?? 0) + 1);
    }
    expect([...perLocalDay.values()]).toEqual([1, 1, 1, 1]);
  });

  it("interval expressions keep their rhythm: skip the missing hour, run through the repeated one", () => {
    const spring = nextOccurrences(cron("0 0,30 * * * *"), new Date("2025-03-30T00:00:00Z"), 4).map(iso);
    expect(spring).toEqual(["2025-03-30T00:30:00.000Z", "2025-03-30T01:00:00.000Z", "2025-03-30T01:30:00.000Z", "2025-03-30T02:00:00.000Z"]); // 01:30 CET, 03:00, 03:30, 04:00 CEST
    const fall = nextOccurrences(cron("0 0,30 * * * *"), new Date("2025-10-25T23:45:00Z"), 4).map(iso);
    expect(fall).toEqual(["2025-10-26T00:00:00.000Z", "2025-10-26T00:30:00.000Z", "2025-10-26T01:00:00.000Z", "2025-10-26T01:30:00.000Z"]); // 02:00, 02:30 CEST, 02:00, 02:30 CET
  });

  it("reads the expression in the rule's zone, with seconds", () => {
    const t = nextOccurrence(cron("15 30 7 * * 1-5", "America/New_York"), new Date("2025-06-06T12:00:00Z")); // a Friday
    expect(iso(t!)).toBe("2025-06-09T11:30:15.000Z"); // Monday 07:30:15 EDT
  });

  it("clips occurrences to [start_time, end_time)", () => {
    const spec: ScheduleSpec = { ...cron("0 0 * * * *", "UTC"), startTime: new Date("2025-01-01T03:00:00Z"), endTime: new Date("2025-01-01T06:00:00Z") };
    expect(nextOccurrences(spec, new Date("2025-01-01T00:00:00Z"), 10).map(iso)).toEqual([
      "2025-01-01T03:00:00.000Z",
      "2025-01-01T04:00:00.000Z",
      "2025-01-01T05:00:00.000Z",
    ]);
    const once: ScheduleSpec = { trigger: { kind: "oneShot", time: new Date("2025-01-01T04:00:00Z") } };
    expect(nextOccurrences(once, new Date("2025-01-01T00:00:00Z"), 10).map(iso)).toEqual(["2025-01-01T04:00:00.000Z"]);
  });
});

describe("misfire policy after downtime", () => {
  // Hourly at :00; Tether is down from 10:30 to 13:30: 11:00, 12:00 and 13:00 are missed.
  const hourly = cron("0 0 * * * *", "UTC");
  const window = ["2025-05-05T10:00:00Z", "2025-05-05T15:00:00Z"] as const;
  const down: [string, string] = ["2025-05-05T10:30:00Z", "2025-05-05T13:30:00Z"];

  it("SKIP fires none of the 3 missed occurrences, records them once, and continues on time", () => {
    const runs = drive(hourly, "skip", ...window, { down });
    expect(runs).toEqual([
      { action: "fire", occurrence: "2025-05-05T10:00:00.000Z", missed: 0, at: "2025-05-05T10:00:00.000Z" },
      { action: "skip", occurrence: "2025-05-05T13:00:00.000Z", missed: 3, at: "2025-05-05T13:30:00.000Z" },
      { action: "fire", occurrence: "2025-05-05T14:00:00.000Z", missed: 0, at: "2025-05-05T14:00:00.000Z" },
      { action: "fire", occurrence: "2025-05-05T15:00:00.000Z", missed: 0, at: "2025-05-05T15:00:00.000Z" },
    ]);
  });

  it("FIRE_ONCE fires one run for the latest missed occurrence, then continues", () => {
    const runs = drive(hourly, "fire_once", ...window, { down });
    expect(runs.filter((r) => r.at === "2025-05-05T13:30:00.000Z")).toEqual([
      { action: "fire", occurrence: "2025-05-05T13:00:00.000Z", missed: 2, at: "2025-05-05T13:30:00.000Z" },
    ]);
    expect(runs.filter((r) => r.action === "fire").map((r) => r.occurrence.slice(11, 16))).toEqual(["10:00", "13:00", "14:00", "15:00"]);
  });

  it("an occurrence less than the grace (60 s) late is not a misfire", () => {
    const plan = planDue(hourly, "skip", new Date("2025-05-05T11:00:00Z"), new Date("2025-05-05T11:00:45Z"));
    expect(plan.run).toEqual({ action: "fire", occurrence: new Date("2025-05-05T11:00:00Z"), missed: 0 });
    expect(iso(plan.next!)).toBe("2025-05-05T12:00:00.000Z");
  });

  it("an occurrence still within the grace after downtime fires on time after the skipped ones", () => {
    // Down until 13:00:30: 11:00 and 12:00 are missed; 13:00 is 30 s late, on time.
    const runs = drive(hourly, "skip", "2025-05-05T10:00:00Z", "2025-05-05T13:01:00Z", { down: ["2025-05-05T10:30:00Z", "2025-05-05T13:00:30Z"] });
    expect(runs.slice(1).map((r) => [r.action, r.occurrence.slice(11, 16), r.missed])).toEqual([
      ["skip", "12:00", 2],
      ["fire", "13:00", 0],
    ]);
  });

  it("a per-second schedule after a day of downtime jumps to the latest missed occurrence", () => {
    const everySecond = cron("* * * * * *", "UTC");
    const started = performance.now();
    const plan = planDue(everySecond, "fire_once", new Date("2025-05-05T00:00:00Z"), new Date("2025-05-06T00:00:00Z"));
    expect(performance.now() - started).toBeLessThan(2000);
    expect(iso(plan.run!.occurrence)).toBe("2025-05-05T23:58:59.000Z"); // the last one more than 60 s old
    expect(plan.run!.missed).toBe(999); // counting stopped at 1,000 missed: this one and 999+ before it
    expect(plan.run!.capped).toBe(true);
    expect(misfireReason(plan.run!, new Date("2025-05-06T00:00:00Z"))).toMatch(
      /once for this and 999\+ earlier missed occurrences since 2025-05-05T00:00:00.000Z/,
    );
    expect(iso(plan.next!)).toBe("2025-05-05T23:59:00.000Z");
  });

  it("a one-shot rule missed during downtime: SKIP records it, FIRE_ONCE fires it late", () => {
    const once: ScheduleSpec = { trigger: { kind: "oneShot", time: new Date("2025-05-05T11:00:00Z") } };
    const now = new Date("2025-05-05T12:00:00Z");
    expect(planDue(once, "skip", once.trigger.kind === "oneShot" ? once.trigger.time : now, now)).toEqual({
      run: { action: "skip", occurrence: new Date("2025-05-05T11:00:00Z"), missed: 1, firstMissed: new Date("2025-05-05T11:00:00Z") },
      next: undefined,
    });
    expect(planDue(once, "fire_once", new Date("2025-05-05T11:00:00Z"), now).run?.action).toBe("fire");
  });
});

describe("rule validation", () => {
  const now = new Date("2025-05-05T10:00:00Z");
  const errors = (init: Parameters<typeof create<typeof RuleSchema>>[1]) => {
    const v = new Violations();
    parseRule(create(RuleSchema, init), "rule", v, { now, checkFuture: true });
    return Object.fromEntries(v.list.map((x) => [x.field, x.description]));
  };
  const brightness = { kind: { case: "led" as const, value: { action: { case: "setBrightness" as const, value: 80 } } } };

  it("names the field, with croner's reason for a bad expression", () => {
    const e = errors({
      trigger: { case: "cron", value: { expression: "0 61 * * * *", timeZone: "Europe/Paris" } },
      target: { case: "device", value: "devices/x" },
      command: brightness,
    });
    expect(e["rule.cron.expression"]).toMatch(/^invalid cron expression: .*minute.*61/i);
  });

  it("refuses an unknown time zone, an empty selector and a command for another kind", () => {
    const e = errors({
      trigger: { case: "cron", value: { expression: "0 30 7 * * *", timeZone: "Mars/Olympus_Mons" } },
      target: { case: "selector", value: { kind: ProductKind.COFFEE_MACHINE, labels: {} } },
      command: brightness,
    });
    expect(e["rule.cron.time_zone"]).toMatch(/unknown time zone "Mars\/Olympus_Mons"/);
    expect(e["rule.selector.labels"]).toMatch(/at least one label/);
    const e2 = errors({
      trigger: { case: "cron", value: { expression: "0 30 7 * * *", timeZone: "europe/paris" } },
      target: { case: "selector", value: { kind: ProductKind.COFFEE_MACHINE, labels: { room: "kitchen" } } },
      command: brightness,
    });
    expect(e2["rule.command"]).toMatch(/is a coffee_machine; a led command does not apply/);
  });

  it("refuses a past one-shot time, an empty trigger and a missing target", () => {
    expect(
      errors({
        trigger: { case: "oneShotTime", value: timestampFromDate(new Date("2025-05-05T09:00:00Z")) },
        target: { case: "device", value: "devices/x" },
        command: brightness,
      }),
    ).toEqual({
      "rule.one_shot_time": "must be in the future",
    });
    expect(Object.keys(errors({ command: brightness }))).toEqual(["rule.trigger", "rule.target"]);
  });

  it("canonicalises the time zone and accepts a valid rule", () => {
    const v = new Violations();
    const spec = parseRule(
      create(RuleSchema, {
        trigger: { case: "cron", value: { expression: "0 30 7 * * 1-5", timeZone: "europe/paris" } },
        target: { case: "device", value: "devices/kitchen-led" },
        command: brightness,
      }),
      "rule",
      v,
      { now, checkFuture: true },
    );
    expect(v.list).toEqual([]);
    expect(spec?.trigger).toEqual({ kind: "cron", expression: "0 30 7 * * 1-5", timeZone: "Europe/Paris" });
    expect(spec?.misfirePolicy).toBe("skip");
  });
});
