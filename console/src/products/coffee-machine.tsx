import { useState } from "react";
import { CoffeeMachineStatusSchema, CupSize, CupSizeSchema, Recipe, RecipeSchema } from "../../../gen/tether/v1/coffee_machine_pb.js";
import { coffeeMachineProduct } from "../../../src/core/products/coffee-machine.js";
import { ErrorBanner, FieldError } from "../components/error-banner.js";
import { EnumOptions } from "../components/enum-options.js";
import { createTask, updateDesired, useAction } from "../device-actions.js";
import { fieldsUnder } from "../errors.js";
import { onOff } from "../format.js";
import { coffeeMachineCommands, lower } from "./coffee-machine-commands.js";
import type { ConsoleProduct, ControlsProps } from "./product.js";

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
            void a.run(async () =>
              onUpdated(
                await updateDesired(device, { case: "coffeeMachine", value: { desired: { power: e.target.checked } } }, "coffee_machine.desired.power"),
              ),
            )
          }
        />{" "}
        Power
      </label>
      <form
        className="brew"
        onSubmit={(e) => {
          e.preventDefault();
          void a.run(async () =>
            onTask(await createTask(device, { kind: { case: "coffeeMachine", value: { action: { case: "brew", value: { recipe, size } } } } })),
          );
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
          onClick={() =>
            void a.run(async () => onTask(await createTask(device, { kind: { case: "coffeeMachine", value: { action: { case: "clean", value: {} } } } })))
          }
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
  ...coffeeMachineCommands,
  exampleDeviceId: "kitchen-espresso",
};
