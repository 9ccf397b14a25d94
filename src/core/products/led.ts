import type { Message } from "@bufbuild/protobuf";
import { LedModeSchema, LedSchema, LedStateSchema } from "../../../gen/tether/v1/led_pb.js";
import type { LedCommand, LedState } from "../../../gen/tether/v1/led_pb.js";
import type { Violations } from "../errors.js";
import { ledWords } from "./led-words.js";
import { type Product, ProductKind } from "./product.js";
import { ledSim } from "./led-sim.js";

/** LED strips and bulbs: power, mode, colour and brightness. */
export const ledProduct: Product = {
  case: "led",
  kindName: "led",
  productKind: ProductKind.LED,
  label: "LED",
  pluralLabel: "LEDs",
  metrics: [
    { name: "power_w", unit: "W", description: "electrical power drawn", min: 0, max: 20 },
    { name: "temperature_celsius", unit: "°C", description: "driver board temperature", min: 0, max: 90 },
  ],
  schema: LedSchema,
  desiredSchema: LedStateSchema,
  sim: ledSim,
  reportedSchema: LedStateSchema,
  words: ledWords,
  validateDesired(message: Message, field: string, v: Violations): void {
    validateLedState(message as LedState, field, v);
  },
  validateCommand(message: Message, field: string, v: Violations): void {
    const { action } = message as LedCommand;
    switch (action.case) {
      case undefined:
        v.add(`${field}.action`, "is required: set_power, set_color, set_brightness or set_mode");
        return;
      case "setBrightness":
        if (action.value > 100) v.add(`${field}.set_brightness`, "must be a percentage between 0 and 100");
        return;
      case "setColor":
        for (const channel of ["red", "green", "blue"] as const) {
          if (action.value[channel] > 255) v.add(`${field}.set_color.${channel}`, "must be between 0 and 255");
        }
        return;
      case "setMode":
        if (action.value === 0 || !LedModeSchema.values.some((e) => e.number === action.value)) {
          v.add(`${field}.set_mode`, "must be a known LedMode other than LED_MODE_UNSPECIFIED");
        }
        return;
      case "setPower":
        return;
    }
  },
};

/** Shared by desired state and (later) LED commands. */
export function validateLedState(state: LedState, field: string, v: Violations): void {
  if (state.brightness !== undefined && state.brightness > 100) {
    v.add(`${field}.brightness`, "must be a percentage between 0 and 100");
  }
  if (!LedModeSchema.values.some((e) => e.number === state.mode)) {
    v.add(`${field}.mode`, `unknown LedMode ${state.mode}`);
  }
  if (state.color) {
    for (const channel of ["red", "green", "blue"] as const) {
      if (state.color[channel] > 255) v.add(`${field}.color.${channel}`, "must be between 0 and 255");
    }
  }
}
