import { CupSize, CupSizeSchema, Recipe, RecipeSchema } from "../../../gen/tether/v1/coffee_machine_pb.js";
import { enumName } from "../format.js";
import type { CommandDraft, CommandInit, ProductCommands } from "./command-form.js";
import { coffeeMachineWords } from "../../../src/core/products/coffee-machine-words.js";

export const lower = (e: Parameters<typeof enumName>[0], v: number) => enumName(e, v).toLowerCase();

/** Coffee machine commands: power, brew (recipe and cup size), clean. */
export const coffeeMachineCommands: ProductCommands<"coffeeMachine"> = {
  actions: [
    { name: "power", label: "power", fields: [{ name: "power", label: "Power", type: "on-off" }] },
    {
      name: "brew",
      label: "brew",
      fields: [
        { name: "recipe", label: "Recipe", type: "enum", enum: RecipeSchema },
        { name: "size", label: "Size", type: "enum", enum: CupSizeSchema, unset: "recipe default" },
      ],
    },
    { name: "clean", label: "clean", fields: [] },
  ],
  draftDefaults: { power: true, recipe: Recipe.ESPRESSO, size: CupSize.UNSPECIFIED },
  buildCommand({ action, values: v }: CommandDraft): CommandInit {
    switch (action) {
      case "brew":
        return { kind: { case: "coffeeMachine", value: { action: { case: "brew", value: { recipe: Number(v.recipe), size: Number(v.size) } } } } };
      case "clean":
        return { kind: { case: "coffeeMachine", value: { action: { case: "clean", value: {} } } } };
      default:
        return { kind: { case: "coffeeMachine", value: { action: { case: "setPower", value: Boolean(v.power) } } } };
    }
  },
  // The words the CLI prints (and parses): one description of a command for every front end.
  describeCommand: (c) => coffeeMachineWords.describe(c),
  describeResult: (r) => (r.dispensedMl > 0 ? `${r.dispensedMl} ml` : undefined),
};
