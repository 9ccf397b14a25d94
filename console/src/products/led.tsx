import type { MessageInitShape } from "@bufbuild/protobuf";
import { useState } from "react";
import { type Color, LedMode, LedModeSchema, type LedStateSchema } from "../../../gen/tether/v1/led_pb.js";
import { ledProduct } from "../../../src/core/products/led.js";
import { ErrorBanner, FieldError } from "../components/error-banner.js";
import { EnumOptions } from "../components/enum-options.js";
import { updateDesired, useAction } from "../device-actions.js";
import { fieldsUnder } from "../errors.js";
import { enumText, onOff } from "../format.js";
import { colorHex, hexColor, ledCommands } from "./led-commands.js";
import type { ConsoleProduct, ControlsProps } from "./product.js";

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
  const set = (field: string, d: LedDesired) =>
    a.run(async () => onUpdated(await updateDesired(device, { case: "led", value: { desired: d } }, `led.desired.${field}`)));
  const commitBrightness = () => brightness !== undefined && void set("brightness", { brightness }).then(() => setBrightness(undefined));
  const fields = a.error?.fields ?? {};
  return (
    <div className="controls" data-controls="led">
      <label className="inline">
        <input
          type="checkbox"
          name="power"
          checked={desired?.power ?? led.reported?.power ?? false}
          disabled={a.busy}
          onChange={(e) => void set("power", { power: e.target.checked })}
        />{" "}
        Power
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
  ...ledCommands,
  exampleDeviceId: "desk-lamp",
};
