import { CupSize, CupSizeSchema, Recipe, RecipeSchema } from "../../../gen/tether/v1/coffee_machine_pb.js";
import { enumName } from "../format.js";
import type { CommandDraft, CommandInit, ProductCommands } from "./command-form.js";

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
  describeCommand({ action: a }) {
    switch (a.case) {
      case "setPower":
        return `power ${a.value ? "on" : "off"}`;
      case "brew":
        return `brew ${lower(RecipeSchema, a.value.recipe)}${a.value.size !== CupSize.UNSPECIFIED ? ` ${lower(CupSizeSchema, a.value.size)}` : ""}`;
      case "clean":
        return "clean";
      default:
        return "(empty command)";
    }
  },
  describeResult: (r) => (r.dispensedMl > 0 ? `${r.dispensedMl} ml` : undefined),
};
