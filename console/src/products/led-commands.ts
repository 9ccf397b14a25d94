import { type Color, LedMode, LedModeSchema } from "../../../gen/tether/v1/led_pb.js";
import type { CommandDraft, CommandInit, ProductCommands } from "./command-form.js";
import { ledWords } from "../../../src/core/products/led-words.js";

export function colorHex(c: Color | undefined): string {
  if (!c) return "#000000";
  return `#${[c.red, c.green, c.blue].map((x) => x.toString(16).padStart(2, "0")).join("")}`;
}

export function hexColor(hex: string): { red: number; green: number; blue: number } {
  const n = Number.parseInt(hex.replace("#", ""), 16);
  return { red: (n >> 16) & 255, green: (n >> 8) & 255, blue: n & 255 };
}

/** LED commands: power, colour, brightness, mode (the same fields as its desired state). */
export const ledCommands: ProductCommands<"led"> = {
  actions: [
    { name: "power", label: "power", fields: [{ name: "power", label: "Power", type: "on-off" }] },
    { name: "color", label: "color", fields: [{ name: "color", label: "Color", type: "color" }] },
    { name: "brightness", label: "brightness", fields: [{ name: "brightness", label: "Brightness (%)", type: "number", min: 0, max: 100 }] },
    { name: "mode", label: "mode", fields: [{ name: "mode", label: "Mode", type: "enum", enum: LedModeSchema }] },
  ],
  draftDefaults: { power: true, color: "#ffffff", brightness: 50, mode: LedMode.SOLID },
  buildCommand({ action, values: v }: CommandDraft): CommandInit {
    switch (action) {
      case "color":
        return { kind: { case: "led", value: { action: { case: "setColor", value: hexColor(String(v.color)) } } } };
      case "brightness":
        return { kind: { case: "led", value: { action: { case: "setBrightness", value: Number(v.brightness) } } } };
      case "mode":
        return { kind: { case: "led", value: { action: { case: "setMode", value: Number(v.mode) } } } };
      default:
        return { kind: { case: "led", value: { action: { case: "setPower", value: Boolean(v.power) } } } };
    }
  },
  // The words the CLI prints (and parses): one description of a command for every front end.
  describeCommand: (c) => ledWords.describe(c),
};
