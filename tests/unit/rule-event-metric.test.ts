import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { ProductKind } from "../../gen/tether/v1/device_pb.js";
import { EventTrigger_Comparison as Comparison, RuleSchema } from "../../gen/tether/v1/rule_pb.js";
import { Violations } from "../../src/core/errors.js";
import { productByKindName } from "../../src/core/products/index.js";
import { checkEventMetric, eventMetricNames, parseRule } from "../../src/core/rules/rule-validation.js";

const now = new Date("2025-05-05T10:00:00Z");
const powerOn = { kind: { case: "led" as const, value: { action: { case: "setPower" as const, value: true } } } };
const onLeds = (metric: string) => {
  const v = new Violations();
  const spec = parseRule(
    create(RuleSchema, {
      trigger: { case: "eventTrigger", value: { metric, comparison: Comparison.LT, threshold: 10 } },
      target: { case: "selector", value: { kind: ProductKind.LED, labels: { room: "hall" } } },
      command: powerOn,
    }),
    "rule",
    v,
    { now, checkFuture: true },
  );
  return { spec, errors: Object.fromEntries(v.list.map((x) => [x.field, x.description])) };
};

describe("event rules name a metric the target's product has", () => {
  it("refuses a metric of another product on a selector, naming the product's metrics", () => {
    const { spec, errors } = onLeds("water_level_percent");
    expect(spec).toBeUndefined();
    expect(Object.keys(errors)).toEqual(["rule.event_trigger.metric"]);
    const message = errors["rule.event_trigger.metric"]!;
    expect(message).toMatch(/^"water_level_percent" is not a metric of LEDs: use one of /);
    // Its telemetry, the link metrics and its reported state's numeric fields.
    for (const m of ["power_w", "temperature_celsius", "signal_strength", "rssi", "brightness", "color.red"]) expect(message).toContain(m);
  });

  it("refuses a near miss of a metric, suggesting it, and accepts a custom metric nothing resembles", () => {
    const typo = onLeds("temperature_celcius").errors["rule.event_trigger.metric"];
    expect(typo).toMatch(
      /^"temperature_celcius" is not a metric of LEDs \(did you mean temperature_celsius\?\): use one of .*, or a custom metric of your own$/,
    );
    // A device may send metrics of its own (the README's room_temp): a rule on one can fire.
    expect(onLeds("room_temp").errors).toEqual({});
    expect(onLeds("flux_capacitor_gw").errors).toEqual({});
  });

  it("accepts telemetry, link metrics and reported-state paths", () => {
    for (const metric of ["power_w", "rssi", "signal_strength", "brightness", "color.blue"]) {
      expect(onLeds(metric).errors, metric).toEqual({});
    }
    const coffee = eventMetricNames(productByKindName("coffee_machine")!);
    expect(coffee).toEqual(
      expect.arrayContaining(["water_level_percent", "boiler_temperature_celsius", "current_brew.progress_percent", "bean_level_percent"]),
    );
    expect(coffee).not.toContain("power_w");
  });

  it("names the device when the target is one (its kind is known after a lookup)", () => {
    const v = new Violations();
    checkEventMetric(
      { kind: "event", metric: "water_level", comparison: Comparison.LT, threshold: 10, forMs: 0, cooldownMs: 1000 },
      productByKindName("led"),
      "rule.event_trigger.metric",
      v,
      "devices/desk-1",
    );
    expect(v.list).toEqual([
      {
        field: "rule.event_trigger.metric",
        description: expect.stringMatching(/^"water_level" is not a metric of LEDs \(devices\/desk-1 is one\): use one of power_w, /),
      },
    ]);
    // Other triggers and unknown kinds are left to the other checks.
    const none = new Violations();
    checkEventMetric({ kind: "cron", expression: "0 * * * * *", timeZone: "UTC" }, productByKindName("led"), "f", none);
    checkEventMetric({ kind: "event", metric: "x", comparison: Comparison.LT, threshold: 1, forMs: 0, cooldownMs: 1000 }, undefined, "f", none);
    expect(none.list).toEqual([]);
  });
});
