import { useState } from "react";
import { CupSize, CupSizeSchema, Recipe, RecipeSchema } from "../../../gen/tether/v1/coffee_machine_pb.js";
import type { Device, DeviceSchema } from "../../../gen/tether/v1/device_pb.js";
import { LedMode, LedModeSchema } from "../../../gen/tether/v1/led_pb.js";
import type { Task } from "../../../gen/tether/v1/task_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { api } from "../api.js";
import type { CommandInit } from "../commands.js";
import { type ReadableError, readable, fieldsUnder } from "../errors.js";
import { colorHex, hexColor } from "../format.js";
import { ErrorBanner, FieldError } from "./error-banner.js";
import { EnumOptions } from "./enum-options.js";

type DeviceKindInit = MessageInitShape<typeof DeviceSchema>["kind"];

interface Props {
  device: Device;
  /** The device after a successful update, to show at once. */
  onUpdated(d: Device): void;
  /** A task the controls created, to show at once. */
  onTask(t: Task): void;
}

/** Runs one call for a control, keeping its error (with field reasons) until the next try. */
function useAction() {
  const [error, setError] = useState<ReadableError>();
  const [busy, setBusy] = useState(false);
  const run = async (f: () => Promise<void>) => {
    setBusy(true);
    setError(undefined);
    try {
      await f();
    } catch (err) {
      setError(readable(err));
    } finally {
      setBusy(false);
    }
  };
  return { error, busy, run };
}

/** Desired-state update of one field, with a field mask so concurrent edits of other fields survive. */
function updateDesired(d: Device, kind: DeviceKindInit, path: string): Promise<Device> {
  return api.devices.updateDevice({ device: { name: d.name, kind }, updateMask: { paths: [path] } });
}

function createTask(d: Device, command: CommandInit): Promise<Task> {
  return api.tasks.createTask({ parent: d.name, task: { command }, requestId: crypto.randomUUID() });
}

/** Controls generated from the product kind: what this device can be told to do. */
export function ProductControls(props: Props) {
  if (props.device.kind.case === "led") return <LedControls {...props} />;
  if (props.device.kind.case === "coffeeMachine") return <CoffeeControls {...props} />;
  return <p className="muted">This device's product kind is unknown to this console.</p>;
}

function LedControls({ device, onUpdated }: Props) {
  const led = device.kind.case === "led" ? device.kind.value : undefined;
  const desired = led?.desired;
  const a = useAction();
  const [brightness, setBrightness] = useState<number>();
  const set = (value: NonNullable<DeviceKindInit> & { case: "led" }, path: string) => a.run(async () => onUpdated(await updateDesired(device, value, path)));
  const fields = a.error?.fields ?? {};
  return (
    <div className="controls" data-controls="led">
      <label className="inline">
        <input type="checkbox" name="power" checked={desired?.power ?? led?.reported?.power ?? false} disabled={a.busy} onChange={(e) => void set({ case: "led", value: { desired: { power: e.target.checked } } }, "led.desired.power")} /> Power
      </label>
      <label>
        Color
        <input
          type="color"
          name="color"
          value={colorHex(desired?.color)}
          onChange={(e) => void set({ case: "led", value: { desired: { color: hexColor(e.target.value) } } }, "led.desired.color")}
        />
        <FieldError messages={fieldsUnder(fields, "device.led.desired.color")} />
      </label>
      <label>
        Brightness <output>{brightness ?? desired?.brightness ?? 0} %</output>
        <input
          type="range"
          name="brightness"
          min={0}
          max={100}
          value={brightness ?? desired?.brightness ?? 0}
          onChange={(e) => setBrightness(Number(e.target.value))}
          onPointerUp={() => brightness !== undefined && void set({ case: "led", value: { desired: { brightness } } }, "led.desired.brightness").then(() => setBrightness(undefined))}
          onKeyUp={() => brightness !== undefined && void set({ case: "led", value: { desired: { brightness } } }, "led.desired.brightness").then(() => setBrightness(undefined))}
        />
        <FieldError messages={fieldsUnder(fields, "device.led.desired.brightness")} />
      </label>
      <label>
        Mode
        <select name="mode" value={desired?.mode ?? LedMode.UNSPECIFIED} onChange={(e) => void set({ case: "led", value: { desired: { mode: Number(e.target.value) } } }, "led.desired.mode")}>
          <option value={LedMode.UNSPECIFIED}>—</option>
          <EnumOptions of={LedModeSchema} />
        </select>
        <FieldError messages={fieldsUnder(fields, "device.led.desired.mode")} />
      </label>
      <ErrorBanner error={a.error && Object.keys(a.error.fields).length === 0 ? a.error : undefined} />
    </div>
  );
}

function CoffeeControls({ device, onUpdated, onTask }: Props) {
  const cm = device.kind.case === "coffeeMachine" ? device.kind.value : undefined;
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
          checked={cm?.desired?.power ?? cm?.reported?.power ?? false}
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
