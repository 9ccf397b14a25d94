import type { Message } from "@bufbuild/protobuf";
import {
  type CoffeeMachineCommand,
  CoffeeMachineDesiredSchema,
  CupSizeSchema,
  RecipeSchema,
  CoffeeMachineReportedSchema,
  CoffeeMachineSchema,
} from "../../../gen/tether/v1/coffee_machine_pb.js";
import type { Violations } from "../errors.js";
import { coffeeMachineWords } from "./coffee-machine-words.js";
import { type Product, ProductKind } from "./product.js";
import { coffeeMachineSim } from "./coffee-machine-sim.js";

/** Coffee machines: an owner sets power; status, levels and brews are reported by the machine. */
export const coffeeMachineProduct: Product = {
  case: "coffeeMachine",
  kindName: "coffee_machine",
  productKind: ProductKind.COFFEE_MACHINE,
  label: "coffee machine",
  pluralLabel: "coffee machines",
  metrics: [
    { name: "water_level_percent", unit: "%", description: "water tank level", min: 0, max: 100 },
    { name: "boiler_temperature_celsius", unit: "°C", description: "boiler temperature", min: 0, max: 130 },
  ],
  schema: CoffeeMachineSchema,
  desiredSchema: CoffeeMachineDesiredSchema,
  sim: coffeeMachineSim,
  reportedSchema: CoffeeMachineReportedSchema,
  words: coffeeMachineWords,
  // The desired state is a single optional bool: every value is valid.
  validateDesired(): void {},
  validateCommand(message: Message, field: string, v: Violations): void {
    const { action } = message as CoffeeMachineCommand;
    if (action.case === undefined) {
      v.add(`${field}.action`, "is required: set_power, brew or clean");
      return;
    }
    if (action.case !== "brew") return;
    const { recipe, size } = action.value;
    if (recipe === 0 || !RecipeSchema.values.some((e) => e.number === recipe)) {
      v.add(`${field}.brew.recipe`, "is required: a known Recipe such as RECIPE_ESPRESSO");
    }
    if (!CupSizeSchema.values.some((e) => e.number === size)) v.add(`${field}.brew.size`, `unknown CupSize ${size}`);
  },
};
