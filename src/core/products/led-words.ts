import { create, type Message, type MessageInitShape } from "@bufbuild/protobuf";
import type { LedCommandSchema } from "../../../gen/tether/v1/led_pb.js";
import { LedMode, type LedCommand, type LedResult, type LedState, LedStateSchema } from "../../../gen/tether/v1/led_pb.js";
import { type CommandInit, type CommandWords, enumByShortName, enumShortName, need, parseOnOff, parsePowerFlag, parseUint } from "./command-words.js";

const USAGE = "power on|off · color #rrggbb|r,g,b · brightness 0-100 · mode solid|blink|breathe|rainbow";
const MODES = "solid, blink, breathe or rainbow";

const command = (action: MessageInitShape<typeof LedCommandSchema>["action"]): CommandInit => ({ kind: { case: "led", value: { action } } });

/** `solid` → LedMode.SOLID; UNSPECIFIED is not a mode anyone types. */
function mode(what: string, v: string): LedMode {
  const m = enumByShortName(LedMode, v);
  if (!m) throw new Error(`${what} ${v}: expected ${MODES}`);
  return m;
}

const hex = (n: number) => n.toString(16).padStart(2, "0");
const colorText = (c: { red: number; green: number; blue: number }) => `#${hex(c.red)}${hex(c.green)}${hex(c.blue)}`;

/** The set fields of an LED state, e.g. `power on, brightness 40`. */
function stateText(s: LedState): string {
  const parts: string[] = [];
  if (s.power !== undefined) parts.push(`power ${s.power ? "on" : "off"}`);
  if (s.color) parts.push(`color ${colorText(s.color)}`);
  if (s.brightness !== undefined) parts.push(`brightness ${s.brightness}`);
  if (s.mode) parts.push(`mode ${enumShortName(LedMode, s.mode)}`);
  return parts.join(", ");
}

/** The CLI's words for LEDs. */
export const ledWords: CommandWords = {
  aliases: [],
  actions: ["power", "color", "brightness", "mode"],
  usage: USAGE,
  example: "brightness 80",
  parse(action, value) {
    switch (action) {
      case "power":
        return command({ case: "setPower", value: parseOnOff(action, need(action, value, USAGE)) });
      case "color":
        return command({ case: "setColor", value: parseColor("color", need(action, value, USAGE)) });
      case "brightness":
        // The range is the server's to check (and to explain); only a non-number cannot be sent.
        return command({ case: "setBrightness", value: parseUint(action, need(action, value, USAGE), "0-100") });
      case "mode":
        return command({ case: "setMode", value: mode(action, need(action, value, USAGE)) });
    }
    throw new Error(`unknown action "${action}": expected ${USAGE}`);
  },
  describe(message: Message) {
    const { action } = message as LedCommand;
    switch (action.case) {
      case "setPower":
        return `power ${action.value ? "on" : "off"}`;
      case "setColor":
        return `color ${colorText(action.value)}`;
      case "setBrightness":
        return `brightness ${action.value}`;
      case "setMode":
        return `mode ${enumShortName(LedMode, action.value)}`;
      default:
        return "-";
    }
  },
  describeResult(message: Message) {
    const { state } = message as LedResult;
    return state ? stateText(state) : "";
  },
  desiredFlags: [
    { name: "power", usage: "on|off" },
    { name: "color", usage: "#rrggbb" },
    { name: "brightness", usage: "0-100" },
    { name: "mode", usage: "solid|blink|breathe|rainbow" },
  ],
  parseDesired(f) {
    const s = create(LedStateSchema);
    const paths: string[] = [];
    if (f.power !== undefined) (s.power = parsePowerFlag(f.power)), paths.push("power");
    if (f.color !== undefined) (s.color = { $typeName: "tether.v1.Color", ...parseColor("--color", f.color) }), paths.push("color");
    // Range checks are the server's, as for the task; a non-number (NaN) would pass them unseen.
    if (f.brightness !== undefined) (s.brightness = parseUint("--brightness", f.brightness, "0-100")), paths.push("brightness");
    if (f.mode !== undefined) (s.mode = mode("--mode", f.mode)), paths.push("mode");
    return { desired: s, paths };
  },
};

/** `#ff8800`, `ff8800` or `255,136,0`, the same for a task and for desired state. Range checks are the server's. */
function parseColor(what: string, v: string): { red: number; green: number; blue: number } {
  const hexMatch = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(v);
  if (hexMatch) return { red: parseInt(hexMatch[1]!, 16), green: parseInt(hexMatch[2]!, 16), blue: parseInt(hexMatch[3]!, 16) };
  const parts = v.split(",").map(Number);
  if (parts.length === 3 && parts.every((n) => Number.isInteger(n) && n >= 0)) return { red: parts[0]!, green: parts[1]!, blue: parts[2]! };
  throw new Error(`${what} ${v}: expected #rrggbb or r,g,b`);
}
