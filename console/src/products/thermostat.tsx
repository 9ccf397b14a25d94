import type { MessageInitShape } from "@bufbuild/protobuf";
import { useState } from "react";
import { ThermostatActionSchema, type ThermostatDesiredSchema, ThermostatMode, ThermostatModeSchema } from "../../../gen/tether/v1/thermostat_pb.js";
import { BOOST_MAX_MINUTES, SETPOINT_MAX_C, SETPOINT_MIN_C, thermostatProduct } from "../../../src/core/products/thermostat.js";
import { ErrorBanner, FieldError } from "../components/error-banner.js";
import { EnumOptions } from "../components/enum-options.js";
import { createTask, updateDesired, useAction } from "../device-actions.js";
import { fieldsUnder } from "../errors.js";
import { enumText, timeText } from "../format.js";
import { SETPOINT_STEP_C, thermostatCommands } from "./thermostat-commands.js";
import type { ConsoleProduct, ControlsProps } from "./product.js";

/** What the setpoint inputs show before the thermostat has a desired or reported one. */
const DEFAULT_SETPOINT_C = 20;

const celsius = (v: number | undefined) => (v === undefined ? "—" : `${v} °C`);
const percent = (v: number | undefined) => (v === undefined ? "—" : `${v} %`);

type ThermostatDesired = MessageInitShape<typeof ThermostatDesiredSchema>;

function ThermostatControls({ device, value: th, onUpdated, onTask }: ControlsProps<"thermostat">) {
  const a = useAction();
  // The setpoint being edited, sent when the slider is let go or the number is confirmed.
  const [setpoint, setSetpoint] = useState<number>();
  const [minutes, setMinutes] = useState(30);
  const shown = setpoint ?? th.desired?.setpointCelsius ?? th.reported?.setpointCelsius ?? DEFAULT_SETPOINT_C;
  const set = (field: string, d: ThermostatDesired) =>
    a.run(async () => onUpdated(await updateDesired(device, { case: "thermostat", value: { desired: d } }, `thermostat.desired.${field}`)));
  const commitSetpoint = () => setpoint !== undefined && void set("setpoint_celsius", { setpointCelsius: setpoint }).then(() => setSetpoint(undefined));
  const fields = a.error?.fields ?? {};
  return (
    <div className="controls" data-controls="thermostat">
      <label>
        Setpoint <output>{shown} °C</output>
        <input
          type="range"
          name="setpoint-slider"
          min={SETPOINT_MIN_C}
          max={SETPOINT_MAX_C}
          step={SETPOINT_STEP_C}
          value={shown}
          disabled={a.busy}
          onChange={(e) => setSetpoint(Number(e.target.value))}
          onPointerUp={commitSetpoint}
          onKeyUp={commitSetpoint}
        />
        <input
          type="number"
          name="setpoint"
          min={SETPOINT_MIN_C}
          max={SETPOINT_MAX_C}
          step={SETPOINT_STEP_C}
          value={shown}
          onChange={(e) => setSetpoint(Number(e.target.value))}
          onBlur={commitSetpoint}
          onKeyDown={(e) => e.key === "Enter" && commitSetpoint()}
        />
        <FieldError messages={fieldsUnder(fields, "device.thermostat.desired.setpoint_celsius")} />
      </label>
      <label>
        Mode
        <select
          name="mode"
          value={th.desired?.mode ?? ThermostatMode.UNSPECIFIED}
          disabled={a.busy}
          onChange={(e) => void set("mode", { mode: Number(e.target.value) })}
        >
          <option value={ThermostatMode.UNSPECIFIED}>—</option>
          <EnumOptions of={ThermostatModeSchema} />
        </select>
        <FieldError messages={fieldsUnder(fields, "device.thermostat.desired.mode")} />
      </label>
      <form
        className="boost"
        onSubmit={(e) => {
          e.preventDefault();
          void a.run(async () => onTask(await createTask(device, { kind: { case: "thermostat", value: { action: { case: "boost", value: { minutes } } } } })));
        }}
      >
        <label>
          Boost (min)
          <input type="number" name="boost-minutes" min={1} max={BOOST_MAX_MINUTES} value={minutes} onChange={(e) => setMinutes(Number(e.target.value))} />
          <FieldError messages={fieldsUnder(fields, "task.command.thermostat.boost.minutes")} />
        </label>
        <button type="submit" name="boost" disabled={a.busy}>
          Boost
        </button>
      </form>
      <ErrorBanner error={a.error && Object.keys(a.error.fields).length === 0 ? a.error : undefined} />
    </div>
  );
}

/** Room thermostats in the console: setpoint and mode as desired state, boost as a task. */
export const thermostatConsole: ConsoleProduct<"thermostat"> = {
  core: thermostatProduct,
  Controls: ThermostatControls,
  stateRows({ desired: w, reported: r }) {
    return [
      ["setpoint", celsius(w?.setpointCelsius), celsius(r?.setpointCelsius)],
      ["mode", enumText(ThermostatModeSchema, w?.mode), enumText(ThermostatModeSchema, r?.mode)],
      ["temperature", "", celsius(r?.temperatureCelsius)],
      ["humidity", "", percent(r?.humidityPercent)],
      ["action", "", enumText(ThermostatActionSchema, r?.action)],
      ["boost end", "", r?.boostEndTime ? timeText(r.boostEndTime) : "—"],
    ];
  },
  ...thermostatCommands,
  exampleDeviceId: "hall-thermostat",
};
