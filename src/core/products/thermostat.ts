import type { Message } from "@bufbuild/protobuf";
import {
  type ThermostatCommand,
  type ThermostatDesired,
  ThermostatDesiredSchema,
  ThermostatModeSchema,
  ThermostatReportedSchema,
  ThermostatSchema,
} from "../../../gen/tether/v1/thermostat_pb.js";
import type { Violations } from "../errors.js";
import { type Product, ProductKind } from "./product.js";
import { thermostatSim } from "./thermostat-sim.js";

import { BOOST_MAX_MINUTES, SETPOINT_MAX_C, SETPOINT_MIN_C } from "./thermostat-limits.js";
import { thermostatWords } from "./thermostat-words.js";

export { BOOST_MAX_MINUTES, SETPOINT_MAX_C, SETPOINT_MIN_C };

/** Room thermostats: an owner sets setpoint and mode; temperature, humidity and action are reported. */
export const thermostatProduct: Product = {
  case: "thermostat",
  kindName: "thermostat",
  productKind: ProductKind.THERMOSTAT,
  label: "thermostat",
  pluralLabel: "thermostats",
  metrics: [
    { name: "temperature_celsius", unit: "°C", description: "room temperature", min: -10, max: 45 },
    { name: "humidity_percent", unit: "%", description: "relative humidity", min: 0, max: 100 },
  ],
  schema: ThermostatSchema,
  desiredSchema: ThermostatDesiredSchema,
  sim: thermostatSim,
  reportedSchema: ThermostatReportedSchema,
  words: thermostatWords,
  validateDesired(message: Message, field: string, v: Violations): void {
    const desired = message as ThermostatDesired;
    if (desired.setpointCelsius !== undefined) checkSetpoint(desired.setpointCelsius, `${field}.setpoint_celsius`, v);
    if (!ThermostatModeSchema.values.some((e) => e.number === desired.mode)) v.add(`${field}.mode`, `unknown ThermostatMode ${desired.mode}`);
  },
  validateCommand(message: Message, field: string, v: Violations): void {
    const { action } = message as ThermostatCommand;
    switch (action.case) {
      case undefined:
        v.add(`${field}.action`, "is required: set_setpoint_celsius, set_mode or boost");
        return;
      case "setSetpointCelsius":
        checkSetpoint(action.value, `${field}.set_setpoint_celsius`, v);
        return;
      case "setMode":
        if (action.value === 0 || !ThermostatModeSchema.values.some((e) => e.number === action.value)) {
          v.add(`${field}.set_mode`, "must be a known ThermostatMode other than THERMOSTAT_MODE_UNSPECIFIED");
        }
        return;
      case "boost":
        if (action.value.minutes < 1 || action.value.minutes > BOOST_MAX_MINUTES) {
          v.add(`${field}.boost.minutes`, `must be between 1 and ${BOOST_MAX_MINUTES}`);
        }
        return;
    }
  },
};

function checkSetpoint(celsius: number, field: string, v: Violations): void {
  // NaN fails both comparisons, so test the range positively.
  if (!(celsius >= SETPOINT_MIN_C && celsius <= SETPOINT_MAX_C)) v.add(field, `must be between ${SETPOINT_MIN_C} and ${SETPOINT_MAX_C} °C`);
}
