import type { ConsoleProduct, CommandDraft, CommandField, DraftValue } from "../products/product.js";
import { EnumOptions } from "./enum-options.js";

/** A fresh draft for a product: its first action, every field at the product's default. */
export function emptyDraft(p: ConsoleProduct): CommandDraft {
  return { action: p.actions[0]?.name ?? "", values: { ...p.draftDefaults } };
}

/** The command part of a form, with the actions and fields the product declares. */
export function CommandEditor({ product, draft, onChange }: { product: ConsoleProduct; draft: CommandDraft; onChange(d: CommandDraft): void }) {
  const action = product.actions.find((a) => a.name === draft.action) ?? product.actions[0];
  const setValue = (name: string, value: DraftValue) => onChange({ ...draft, values: { ...draft.values, [name]: value } });
  return (
    <div className="command-editor">
      <label>
        Action
        <select name="action" value={action?.name ?? ""} onChange={(e) => onChange({ ...draft, action: e.target.value })}>
          {product.actions.map((a) => (
            <option key={a.name} value={a.name}>
              {a.label}
            </option>
          ))}
        </select>
      </label>
      {action?.fields.map((f) => (
        <FieldInput key={f.name} field={f} value={draft.values[f.name] ?? product.draftDefaults[f.name]} onChange={(v) => setValue(f.name, v)} />
      ))}
    </div>
  );
}

function FieldInput({ field: f, value, onChange }: { field: CommandField; value: DraftValue | undefined; onChange(v: DraftValue): void }) {
  const name = `command-${f.name}`;
  switch (f.type) {
    case "on-off":
      return (
        <label>
          {f.label}
          <select name={name} value={value ? "on" : "off"} onChange={(e) => onChange(e.target.value === "on")}>
            <option value="on">on</option>
            <option value="off">off</option>
          </select>
        </label>
      );
    case "number":
      return (
        <label>
          {f.label}
          <input
            type="number"
            name={name}
            min={f.min}
            max={f.max}
            step={f.step}
            value={Number(value ?? 0)}
            onChange={(e) => onChange(Number(e.target.value))}
          />
        </label>
      );
    case "color":
      return (
        <label>
          {f.label}
          <input type="color" name={name} value={String(value ?? "#000000")} onChange={(e) => onChange(e.target.value)} />
        </label>
      );
    case "enum":
      return (
        <label>
          {f.label}
          <select name={name} value={Number(value ?? 0)} onChange={(e) => onChange(Number(e.target.value))}>
            {f.unset !== undefined && <option value={0}>{f.unset}</option>}
            <EnumOptions of={f.enum} />
          </select>
        </label>
      );
  }
}
