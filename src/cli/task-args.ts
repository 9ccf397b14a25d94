import type { MessageInitShape } from "@bufbuild/protobuf";
import { CupSize, Recipe } from "../../gen/tether/v1/coffee_machine_pb.js";
import type { CommandSchema } from "../../gen/tether/v1/command_pb.js";
import { LedMode } from "../../gen/tether/v1/led_pb.js";

export const TASK_ACTIONS = `LED:            power on|off · color #rrggbb · brightness 0-100 · mode solid|blink|breathe|rainbow
coffee machine: power on|off · brew <recipe>[:small|medium|large] · clean`;

type CommandInit = MessageInitShape<typeof CommandSchema>;

/** Builds a Command from `<action> [value]` for a device of kind `kind` (`led` or `coffee_machine`). */
export function commandFromArgs(kind: string, action: string | undefined, value: string | undefined): CommandInit {
  const need = () => {
    if (value === undefined) throw new Error(`${action}: missing value\n${TASK_ACTIONS}`);
    return value;
  };
  const power = () => {
    const v = need();
    if (v !== "on" && v !== "off") throw new Error(`power ${v}: expected on or off`);
    return v === "on";
  };
  if (kind === "led") {
    switch (action) {
      case "power":
        return { kind: { case: "led", value: { action: { case: "setPower", value: power() } } } };
      case "color": {
        const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(need());
        if (!m) throw new Error(`color ${value}: expected #rrggbb`);
        const [r, g, b] = [m[1]!, m[2]!, m[3]!].map((h) => parseInt(h, 16)) as [number, number, number];
        return { kind: { case: "led", value: { action: { case: "setColor", value: { red: r, green: g, blue: b } } } } };
      }
      case "brightness":
        return { kind: { case: "led", value: { action: { case: "setBrightness", value: Number(need()) } } } };
      case "mode": {
        const m = (LedMode as unknown as Record<string, LedMode>)[need().toUpperCase()];
        if (!m) throw new Error(`mode ${value}: expected solid, blink, breathe or rainbow`);
        return { kind: { case: "led", value: { action: { case: "setMode", value: m } } } };
      }
    }
  } else {
    switch (action) {
      case "power":
        return { kind: { case: "coffeeMachine", value: { action: { case: "setPower", value: power() } } } };
      case "brew": {
        const [r = "", s = ""] = need().split(":");
        const recipe = (Recipe as unknown as Record<string, Recipe>)[r.toUpperCase()];
        if (!recipe) throw new Error(`brew ${r}: expected espresso, lungo, cappuccino, latte, americano or hot_water`);
        const size = s ? (CupSize as unknown as Record<string, CupSize>)[s.toUpperCase()] : CupSize.UNSPECIFIED;
        if (size === undefined) throw new Error(`size ${s}: expected small, medium or large`);
        return { kind: { case: "coffeeMachine", value: { action: { case: "brew", value: { recipe, size } } } } };
      }
      case "clean":
        return { kind: { case: "coffeeMachine", value: { action: { case: "clean", value: {} } } } };
    }
  }
  throw new Error(`unknown action "${action ?? ""}" for a ${kind}\n${TASK_ACTIONS}`);
}

/** `30s`, `5m`, `2h`, `1d` or plain seconds → a Duration init. */
export function parseDuration(v: string): { seconds: bigint; nanos: number } {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(v);
  if (!m) throw new Error(`duration ${v}: expected e.g. 500ms, 30s, 5m, 2h, 1d`);
  const unit = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? "s") as "s"];
  const secs = Number(m[1]) * unit;
  return { seconds: BigInt(Math.floor(secs)), nanos: Math.round((secs % 1) * 1e9) };
}
