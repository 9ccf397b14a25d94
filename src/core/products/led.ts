import type { Message } from "@bufbuild/protobuf";
import { LedModeSchema, LedSchema, LedStateSchema } from "../../../gen/tether/v1/led_pb.js";
import type { LedState } from "../../../gen/tether/v1/led_pb.js";
import type { Violations } from "../errors.js";
import { type Product, ProductKind } from "./product.js";

/** LED strips and bulbs: power, mode, colour and brightness. */
export const ledProduct: Product = {
  case: "led",
  kindName: "led",
  productKind: ProductKind.LED,
  schema: LedSchema,
  desiredSchema: LedStateSchema,
  reportedSchema: LedStateSchema,
  validateDesired(message: Message, field: string, v: Violations): void {
    validateLedState(message as LedState, field, v);
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
