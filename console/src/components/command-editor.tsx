import { CupSize, CupSizeSchema, Recipe, RecipeSchema } from "../../../gen/tether/v1/coffee_machine_pb.js";
import { LedMode, LedModeSchema } from "../../../gen/tether/v1/led_pb.js";
import type { CommandInit } from "../commands.js";
import { hexColor } from "../format.js";
import { EnumOptions } from "./enum-options.js";

export type ProductKindName = "led" | "coffee_machine";

/** The form state of a command; `toCommand` turns it into the protobuf `Command`. */
export interface CommandDraft {
  action: string;
  power: boolean;
  color: string;
  brightness: number;
  mode: LedMode;
  recipe: Recipe;
  size: CupSize;
}

export const emptyDraft: CommandDraft = { action: "power", power: true, color: "#ffffff", brightness: 50, mode: LedMode.SOLID, recipe: Recipe.ESPRESSO, size: CupSize.UNSPECIFIED };

const ACTIONS: Record<ProductKindName, Array<[string, string]>> = {
  led: [
    ["power", "power"],
    ["color", "color"],
    ["brightness", "brightness"],
    ["mode", "mode"],
  ],
  coffee_machine: [
    ["power", "power"],
    ["brew", "brew"],
    ["clean", "clean"],
  ],
};

export function toCommand(kind: ProductKindName, d: CommandDraft): CommandInit {
  if (kind === "led") {
    const action =
      d.action === "color"
        ? ({ case: "setColor", value: hexColor(d.color) } as const)
        : d.action === "brightness"
          ? ({ case: "setBrightness", value: d.brightness } as const)
          : d.action === "mode"
            ? ({ case: "setMode", value: d.mode } as const)
            : ({ case: "setPower", value: d.power } as const);
    return { kind: { case: "led", value: { action } } };
  }
  if (d.action === "brew") return { kind: { case: "coffeeMachine", value: { action: { case: "brew", value: { recipe: d.recipe, size: d.size } } } } };
  if (d.action === "clean") return { kind: { case: "coffeeMachine", value: { action: { case: "clean", value: {} } } } };
  const action = { case: "setPower", value: d.power } as const;
  return { kind: { case: "coffeeMachine", value: { action } } };
}

/** The command part of a form, with the actions of one product kind. */
export function CommandEditor({ kind, draft, onChange }: { kind: ProductKindName; draft: CommandDraft; onChange(d: CommandDraft): void }) {
  const set = (patch: Partial<CommandDraft>) => onChange({ ...draft, ...patch });
  const action = ACTIONS[kind].some(([a]) => a === draft.action) ? draft.action : "power";
  return (
    <div className="command-editor">
      <label>
        Action
        <select name="action" value={action} onChange={(e) => set({ action: e.target.value })}>
          {ACTIONS[kind].map(([v, l]) => (
            <option key={v} value={v}>
              {l}
            </option>
          ))}
        </select>
      </label>
      {action === "power" && (
        <label>
          Power
          <select name="command-power" value={draft.power ? "on" : "off"} onChange={(e) => set({ power: e.target.value === "on" })}>
            <option value="on">on</option>
            <option value="off">off</option>
          </select>
        </label>
      )}
      {action === "color" && (
        <label>
          Color
          <input type="color" name="command-color" value={draft.color} onChange={(e) => set({ color: e.target.value })} />
        </label>
      )}
      {action === "brightness" && (
        <label>
          Brightness (%)
          <input type="number" name="command-brightness" value={draft.brightness} onChange={(e) => set({ brightness: Number(e.target.value) })} />
        </label>
      )}
      {action === "mode" && (
        <label>
          Mode
          <select name="command-mode" value={draft.mode} onChange={(e) => set({ mode: Number(e.target.value) })}>
            <EnumOptions of={LedModeSchema} />
          </select>
        </label>
      )}
      {action === "brew" && (
        <>
          <label>
            Recipe
            <select name="command-recipe" value={draft.recipe} onChange={(e) => set({ recipe: Number(e.target.value) })}>
              <EnumOptions of={RecipeSchema} />
            </select>
          </label>
          <label>
            Size
            <select name="command-size" value={draft.size} onChange={(e) => set({ size: Number(e.target.value) })}>
              <option value={CupSize.UNSPECIFIED}>recipe default</option>
              <EnumOptions of={CupSizeSchema} />
            </select>
          </label>
        </>
      )}
    </div>
  );
}
