import { ThermostatMode, ThermostatModeSchema } from "../../../gen/tether/v1/thermostat_pb.js";
import { BOOST_MAX_MINUTES, SETPOINT_MAX_C, SETPOINT_MIN_C } from "../../../src/core/products/thermostat.js";
import type { CommandDraft, CommandInit, ProductCommands } from "./command-form.js";
import { thermostatWords } from "../../../src/core/products/thermostat-words.js";

/** The setpoint's granularity in the console's inputs. */
export const SETPOINT_STEP_C = 0.5;

/** Thermostat commands: setpoint, mode, boost (minutes). */
export const thermostatCommands: ProductCommands<"thermostat"> = {
  actions: [
    {
      name: "setpoint",
      label: "setpoint",
      fields: [{ name: "setpoint", label: "Setpoint (°C)", type: "number", min: SETPOINT_MIN_C, max: SETPOINT_MAX_C, step: SETPOINT_STEP_C }],
    },
    { name: "mode", label: "mode", fields: [{ name: "mode", label: "Mode", type: "enum", enum: ThermostatModeSchema }] },
    { name: "boost", label: "boost", fields: [{ name: "minutes", label: "Minutes", type: "number", min: 1, max: BOOST_MAX_MINUTES }] },
  ],
  draftDefaults: { setpoint: 21, mode: ThermostatMode.HEAT, minutes: 30 },
  buildCommand({ action, values: v }: CommandDraft): CommandInit {
    switch (action) {
      case "mode":
        return { kind: { case: "thermostat", value: { action: { case: "setMode", value: Number(v.mode) } } } };
      case "boost":
        return { kind: { case: "thermostat", value: { action: { case: "boost", value: { minutes: Number(v.minutes) } } } } };
      default:
        return { kind: { case: "thermostat", value: { action: { case: "setSetpointCelsius", value: Number(v.setpoint) } } } };
    }
  },
  // The words the CLI prints (and parses): one description of a command for every front end.
  describeCommand: (c) => thermostatWords.describe(c),
  describeResult: (r) => (r.state?.temperatureCelsius !== undefined ? `${r.state.temperatureCelsius} °C` : undefined),
};
