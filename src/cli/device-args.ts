import { create } from "@bufbuild/protobuf";
import { CoffeeMachineDesiredSchema } from "../../gen/tether/v1/coffee_machine_pb.js";
import type { Device } from "../../gen/tether/v1/device_pb.js";
import { LedMode, LedStateSchema } from "../../gen/tether/v1/led_pb.js";

/** The flags that describe a device, shared by `create` and `update`. */
export const DEVICE_FLAGS = {
  kind: { type: "string" },
  "display-name": { type: "string" },
  label: { type: "string", multiple: true },
  owner: { type: "string" },
  firmware: { type: "string" },
  power: { type: "string" },
  color: { type: "string" },
  brightness: { type: "string" },
  mode: { type: "string" },
  etag: { type: "string" },
} as const;

export interface DeviceFlagValues {
  kind?: string;
  "display-name"?: string;
  label?: string[];
  owner?: string;
  firmware?: string;
  power?: string;
  color?: string;
  brightness?: string;
  mode?: string;
}

/** Parses `k=v` label flags; a bare `k=` sets an empty value. */
export function parseLabels(labels: string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of labels) {
    const i = l.indexOf("=");
    if (i <= 0) throw new Error(`--label ${l}: expected key=value`);
    out[l.slice(0, i)] = l.slice(i + 1);
  }
  return out;
}

/** Builds the `kind` oneof with the desired state named by the flags, or undefined if none was given. */
export function desiredFromFlags(kind: string, f: DeviceFlagValues): { kind: Device["kind"]; paths: string[] } | undefined {
  const paths: string[] = [];
  const power = f.power === undefined ? undefined : parsePower(f.power);
  if (kind === "led") {
    const s = create(LedStateSchema);
    if (power !== undefined) (s.power = power), paths.push("led.desired.power");
    if (f.color !== undefined) (s.color = { $typeName: "tether.v1.Color", ...parseColor(f.color) }), paths.push("led.desired.color");
    if (f.brightness !== undefined) (s.brightness = Number(f.brightness)), paths.push("led.desired.brightness");
    if (f.mode !== undefined) (s.mode = parseMode(f.mode)), paths.push("led.desired.mode");
    return { kind: { case: "led", value: { $typeName: "tether.v1.Led", desired: s } }, paths };
  }
  if (kind === "coffee_machine" || kind === "coffee") {
    if (f.color !== undefined || f.brightness !== undefined || f.mode !== undefined) {
      throw new Error("--color, --brightness and --mode apply to LEDs only");
    }
    const s = create(CoffeeMachineDesiredSchema);
    if (power !== undefined) (s.power = power), paths.push("coffee_machine.desired.power");
    return { kind: { case: "coffeeMachine", value: { $typeName: "tether.v1.CoffeeMachine", desired: s } }, paths };
  }
  throw new Error(`--kind ${kind}: expected led or coffee_machine`);
}

function parsePower(v: string): boolean {
  if (["on", "true", "1"].includes(v)) return true;
  if (["off", "false", "0"].includes(v)) return false;
  throw new Error(`--power ${v}: expected on or off`);
}

/** `#ff8800`, `ff8800` or `255,136,0`. Range checks are the server's. */
function parseColor(v: string): { red: number; green: number; blue: number } {
  const hex = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(v);
  if (hex) return { red: parseInt(hex[1]!, 16), green: parseInt(hex[2]!, 16), blue: parseInt(hex[3]!, 16) };
  const parts = v.split(",").map(Number);
  if (parts.length === 3 && parts.every((n) => Number.isInteger(n) && n >= 0)) {
    return { red: parts[0]!, green: parts[1]!, blue: parts[2]! };
  }
  throw new Error(`--color ${v}: expected #rrggbb or r,g,b`);
}

function parseMode(v: string): LedMode {
  const m = (LedMode as unknown as Record<string, LedMode>)[v.toUpperCase()];
  if (m === undefined || m === LedMode.UNSPECIFIED) throw new Error(`--mode ${v}: expected solid, blink, breathe or rainbow`);
  return m;
}
