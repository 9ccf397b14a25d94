import { create, type Message, type MessageInitShape } from "@bufbuild/protobuf";
import type { ThermostatCommandSchema } from "../../../gen/tether/v1/thermostat_pb.js";
import {
  ThermostatAction,
  type ThermostatCommand,
  ThermostatDesiredSchema,
  ThermostatMode,
  type ThermostatResult,
} from "../../../gen/tether/v1/thermostat_pb.js";
import { type CommandInit, type CommandWords, enumByShortName, enumShortName, need } from "./command-words.js";
// The server enforces these limits too; checking them here lets the CLI say so before a round trip.
import { BOOST_MAX_MINUTES, SETPOINT_MAX_C, SETPOINT_MIN_C } from "./thermostat-limits.js";

const USAGE = `setpoint ${SETPOINT_MIN_C}-${SETPOINT_MAX_C} (°C) · mode off|heat|cool|auto · boost <minutes 1-${BOOST_MAX_MINUTES}>`;

const command = (action: MessageInitShape<typeof ThermostatCommandSchema>["action"]): CommandInit => ({ kind: { case: "thermostat", value: { action } } });

function setpoint(what: string, v: string): number {
  const n = Number(v);
  // NaN fails both comparisons, so test the range positively.
  if (v.trim() === "" || !(n >= SETPOINT_MIN_C && n <= SETPOINT_MAX_C))
    throw new Error(`${what} ${v}: expected degrees Celsius between ${SETPOINT_MIN_C} and ${SETPOINT_MAX_C}, e.g. 21.5`);
  return n;
}

function mode(what: string, v: string): ThermostatMode {
  const m = enumByShortName(ThermostatMode, v);
  if (!m) throw new Error(`${what} ${v}: expected off, heat, cool or auto`);
  return m;
}

/** The CLI's words for thermostats. */
export const thermostatWords: CommandWords = {
  aliases: [],
  actions: ["setpoint", "mode", "boost"],
  usage: USAGE,
  example: "setpoint 21.5",
  parse(action, value) {
    switch (action) {
      case "setpoint":
        return command({ case: "setSetpointCelsius", value: setpoint(action, need(action, value, USAGE)) });
      case "mode":
        return command({ case: "setMode", value: mode(action, need(action, value, USAGE)) });
      case "boost": {
        const v = need(action, value, USAGE);
        const minutes = Number(v);
        if (!Number.isInteger(minutes) || minutes < 1 || minutes > BOOST_MAX_MINUTES)
          throw new Error(`boost ${v}: expected whole minutes between 1 and ${BOOST_MAX_MINUTES}`);
        return command({ case: "boost", value: { minutes } });
      }
    }
    throw new Error(`unknown action "${action}": expected ${USAGE}`);
  },
  describe(message: Message) {
    const { action } = message as ThermostatCommand;
    switch (action.case) {
      case "setSetpointCelsius":
        return `setpoint ${action.value}`;
      case "setMode":
        return `mode ${enumShortName(ThermostatMode, action.value)}`;
      case "boost":
        return `boost ${action.value.minutes}`;
      default:
        return "-";
    }
  },
  describeResult(message: Message) {
    const { state } = message as ThermostatResult;
    if (!state) return "";
    const parts: string[] = [];
    if (state.setpointCelsius !== undefined) parts.push(`setpoint ${state.setpointCelsius} °C`);
    if (state.mode) parts.push(`mode ${enumShortName(ThermostatMode, state.mode)}`);
    if (state.temperatureCelsius !== undefined) parts.push(`room ${state.temperatureCelsius} °C`);
    if (state.humidityPercent !== undefined) parts.push(`humidity ${state.humidityPercent}%`);
    if (state.action) parts.push(enumShortName(ThermostatAction, state.action));
    return parts.join(", ");
  },
  desiredFlags: [
    { name: "setpoint", usage: `${SETPOINT_MIN_C}-${SETPOINT_MAX_C}` },
    { name: "mode", usage: "off|heat|cool|auto" },
  ],
  parseDesired(f) {
    const s = create(ThermostatDesiredSchema);
    const paths: string[] = [];
    if (f.setpoint !== undefined) (s.setpointCelsius = setpoint("--setpoint", f.setpoint)), paths.push("setpoint_celsius");
    if (f.mode !== undefined) (s.mode = mode("--mode", f.mode)), paths.push("mode");
    return { desired: s, paths };
  },
};
