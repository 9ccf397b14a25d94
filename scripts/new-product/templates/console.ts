import { cap, type KindNames } from "../names.js";

/** console/src/products/<file>.tsx: the device page's controls and state rows, registered in BY_CASE. */
export function consoleModule(n: KindNames): string {
  const P = n.pascal;
  return `import { ${n.case}Product } from "../../../src/core/products/${n.file}.js";
import { ErrorBanner, FieldError } from "../components/error-banner.js";
import { createTask, updateDesired, useAction } from "../device-actions.js";
import { fieldsUnder } from "../errors.js";
import { onOff } from "../format.js";
import { ${n.case}Commands } from "./${n.file}-commands.js";
import type { ConsoleProduct, ControlsProps } from "./product.js";

function ${P}Controls({ device, value, onUpdated, onTask }: ControlsProps<"${n.case}">) {
  const a = useAction();
  const fields = a.error?.fields ?? {};
  const on = value.desired?.power ?? value.reported?.power ?? false;
  return (
    <div className="controls" data-controls="${n.kind}">
      <label className="inline">
        <input
          type="checkbox"
          name="power"
          checked={on}
          disabled={a.busy}
          onChange={(e) =>
            void a.run(async () => onUpdated(await updateDesired(device, { case: "${n.case}", value: { desired: { power: e.target.checked } } }, "${n.kind}.desired.power")))
          }
        />{" "}
        Power
      </label>
      <FieldError messages={fieldsUnder(fields, "device.${n.kind}.desired.power")} />
      {/* The same switch as a task: it waits while the device is offline and has a result. */}
      <button
        type="button"
        name="toggle-power"
        disabled={a.busy}
        onClick={() => void a.run(async () => onTask(await createTask(device, { kind: { case: "${n.case}", value: { action: { case: "setPower", value: !on } } } })))}
      >
        {on ? "Switch off" : "Switch on"} (task)
      </button>
      <ErrorBanner error={a.error && Object.keys(a.error.fields).length === 0 ? a.error : undefined} />
    </div>
  );
}

/** ${cap(n.plural)} in the console: power as desired state, and as a task. */
export const ${n.case}Console: ConsoleProduct<"${n.case}"> = {
  core: ${n.case}Product,
  Controls: ${P}Controls,
  stateRows({ desired: w, reported: r }) {
    return [["power", onOff(w?.power), onOff(r?.power)]];
  },
  ...${n.case}Commands,
  exampleDeviceId: "my-${n.file}",
};
`;
}
