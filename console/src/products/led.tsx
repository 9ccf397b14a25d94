import type { MessageInitShape } from "@bufbuild/protobuf";
import { useState } from "react";
import { type Color, LedMode, LedModeSchema, type LedStateSchema } from "../../../gen/tether/v1/led_pb.js";
import { ledProduct } from "../../../src/core/products/led.js";
import { ErrorBanner, FieldError } from "../components/error-banner.js";
import { EnumOptions } from "../components/enum-options.js";
import { updateDesired, useAction } from "../device-actions.js";
import type { CommandInit } from "../commands.js";
import { fieldsUnder } from "../errors.js";
import { enumName, enumText, onOff } from "../format.js";
import type { CommandDraft, ConsoleProduct, ControlsProps } from "./product.js";

export function colorHex(c: Color | undefined): string {
  if (!c) return "#000000";
  return `#${[c.red, c.green, c.blue].map((x) => x.toString(16).padStart(2, "0")).join("")}`;
}

export function hexColor(hex: string): { red: number; green: number; blue: number } {
  const n = Number.parseInt(hex.replace("#", ""), 16);
  return { red: (n >> 16) & 255, green: (n >> 8) & 255, blue: n & 255 };
}

const swatch = (c: Color | undefined) =>
  c ? (
    <span className="color">
      <span className="swatch" style={{ background: colorHex(c) }} /> {colorHex(c)}
    </span>
  ) : (
    "—"
  );

type LedDesired = MessageInitShape<typeof LedStateSchema>;

function LedControls({ device, value: led, onUpdated }: ControlsProps<"led">) {
  const desired = led.desired;
  const a = useAction();
  const [brightness, setBrightness] = useState<number>();
  // One desired field at a time (`led.desired.<field>`), so a concurrent edit of another survives.
  const set = (field: string, d: LedDesired) => a.run(async () => onUpdated(await updateDesired(device, { case: "led", value: { desired: d } }, `led.desired.${field}`)));
  const commitBrightness = () => brightness !== undefined && void set("brightness", { brightness }).then(() => setBrightness(undefined));
  const fields = a.error?.fields ?? {};
  return (
    <div className="controls" data-controls="led">
      <label className="inline">
        <input type="checkbox" name="power" checked={desired?.power ?? led.reported?.power ?? false} disabled={a.busy} onChange={(e) => void set("power", { power: e.target.checked })} /> Power
      </label>
      <label>
        Color
        <input type="color" name="color" value={colorHex(desired?.color)} onChange={(e) => void set("color", { color: hexColor(e.target.value) })} />
        <FieldError messages={fieldsUnder(fields, "device.led.desired.color")} />
      </label>
      <label>
        Brightness <output>{brightness ?? desired?.brightness ?? 0} %</output>
        <input
          type="range"
          name="brightness"
          min={0}
          max={100}
          value={brightness ?? desired?.brightness ?? 0}
          onChange={(e) => setBrightness(Number(e.target.value))}
          onPointerUp={commitBrightness}
          onKeyUp={commitBrightness}
        />
        <FieldError messages={fieldsUnder(fields, "device.led.desired.brightness")} />
      </label>
      <label>
        Mode
        <select name="mode" value={desired?.mode ?? LedMode.UNSPECIFIED} onChange={(e) => void set("mode", { mode: Number(e.target.value) })}>
          <option value={LedMode.UNSPECIFIED}>—</option>
          <EnumOptions of={LedModeSchema} />
        </select>
        <FieldError messages={fieldsUnder(fields, "device.led.desired.mode")} />
      </label>
      <ErrorBanner error={a.error && Object.keys(a.error.fields).length === 0 ? a.error : undefined} />
    </div>
  );
}

/** LED strips and bulbs in the console: power, colour, brightness and mode, all desired state. */
export const ledConsole: ConsoleProduct<"led"> = {
  core: ledProduct,
  Controls: LedControls,
  stateRows({ desired: w, reported: r }) {
    return [
      ["power", onOff(w?.power), onOff(r?.power)],
      ["color", swatch(w?.color), swatch(r?.color)],
      ["brightness", w?.brightness ?? "—", r?.brightness ?? "—"],
      ["mode", enumText(LedModeSchema, w?.mode), enumText(LedModeSchema, r?.mode)],
    ];
  },
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
  describeCommand({ action: a }) {
    switch (a.case) {
      case "setPower":
        return `power ${a.value ? "on" : "off"}`;
      case "setColor":
        return `color ${colorHex(a.value)}`;
      case "setBrightness":
        return `brightness ${a.value}`;
      case "setMode":
        return `mode ${enumName(LedModeSchema, a.value).toLowerCase()}`;
      default:
        return "(empty command)";
    }
  },
  exampleDeviceId: "desk-lamp",
};
