import { useState } from "react";
import { CoffeeMachineStatusSchema, CupSize, CupSizeSchema, Recipe, RecipeSchema } from "../../../gen/tether/v1/coffee_machine_pb.js";
import { coffeeMachineProduct } from "../../../src/core/products/coffee-machine.js";
import { ErrorBanner, FieldError } from "../components/error-banner.js";
import { EnumOptions } from "../components/enum-options.js";
import { createTask, updateDesired, useAction } from "../device-actions.js";
import type { CommandInit } from "../commands.js";
import { fieldsUnder } from "../errors.js";
import { enumName, onOff } from "../format.js";
import type { CommandDraft, ConsoleProduct, ControlsProps } from "./product.js";

const lower = (e: Parameters<typeof enumName>[0], v: number) => enumName(e, v).toLowerCase();

function CoffeeControls({ device, value: cm, onUpdated, onTask }: ControlsProps<"coffeeMachine">) {
  const a = useAction();
  const [recipe, setRecipe] = useState<Recipe>(Recipe.ESPRESSO);
  const [size, setSize] = useState<CupSize>(CupSize.UNSPECIFIED);
  const fields = a.error?.fields ?? {};
  return (
    <div className="controls" data-controls="coffee_machine">
      <label className="inline">
        <input
          type="checkbox"
          name="power"
          checked={cm.desired?.power ?? cm.reported?.power ?? false}
          disabled={a.busy}
          onChange={(e) =>
            void a.run(async () => onUpdated(await updateDesired(device, { case: "coffeeMachine", value: { desired: { power: e.target.checked } } }, "coffee_machine.desired.power")))
          }
        />{" "}
        Power
      </label>
      <form
        className="brew"
        onSubmit={(e) => {
          e.preventDefault();
          void a.run(async () => onTask(await createTask(device, { kind: { case: "coffeeMachine", value: { action: { case: "brew", value: { recipe, size } } } } })));
        }}
      >
        <label>
          Recipe
          <select name="recipe" value={recipe} onChange={(e) => setRecipe(Number(e.target.value))}>
            <EnumOptions of={RecipeSchema} />
          </select>
          <FieldError messages={fieldsUnder(fields, "task.command.coffee_machine.brew.recipe")} />
        </label>
        <label>
          Size
          <select name="size" value={size} onChange={(e) => setSize(Number(e.target.value))}>
            <option value={CupSize.UNSPECIFIED}>recipe default</option>
            <EnumOptions of={CupSizeSchema} />
          </select>
          <FieldError messages={fieldsUnder(fields, "task.command.coffee_machine.brew.size")} />
        </label>
        <button type="submit" name="brew" disabled={a.busy}>
          Brew
        </button>
        <button
          type="button"
          name="clean"
          disabled={a.busy}
          onClick={() => void a.run(async () => onTask(await createTask(device, { kind: { case: "coffeeMachine", value: { action: { case: "clean", value: {} } } } })))}
        >
          Clean
        </button>
      </form>
      <ErrorBanner error={a.error} showFields />
    </div>
  );
}

/** Coffee machines in the console: power as desired state; brewing and cleaning as tasks. */
export const coffeeMachineConsole: ConsoleProduct<"coffeeMachine"> = {
  core: coffeeMachineProduct,
  Controls: CoffeeControls,
  stateRows({ desired: w, reported: r }) {
    const brew = r?.currentBrew;
    return [
      ["power", onOff(w?.power), onOff(r?.power)],
      ["status", "", r ? lower(CoffeeMachineStatusSchema, r.status) : "—"],
      ["water", "", r ? `${r.waterLevelPercent} %` : "—"],
      ["beans", "", r ? `${r.beanLevelPercent} %` : "—"],
      ["brewing", "", brew ? `${lower(RecipeSchema, brew.recipe)} ${lower(CupSizeSchema, brew.size)} ${brew.progressPercent} %` : "—"],
    ];
  },
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
  exampleDeviceId: "kitchen-espresso",
};
