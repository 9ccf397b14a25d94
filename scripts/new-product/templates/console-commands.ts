import { cap, type KindNames } from "../names.js";

/** console/src/products/<file>-commands.ts: the command forms' logic, React-free (unit-tested under Node). */
export function consoleCommandsModule(n: KindNames): string {
  return `import type { CommandDraft, CommandInit, ProductCommands } from "./command-form.js";

/** ${cap(n.label)} commands: power. */
export const ${n.case}Commands: ProductCommands<"${n.case}"> = {
  actions: [{ name: "power", label: "power", fields: [{ name: "power", label: "Power", type: "on-off" }] }],
  draftDefaults: { power: true },
  buildCommand({ values: v }: CommandDraft): CommandInit {
    return { kind: { case: "${n.case}", value: { action: { case: "setPower", value: Boolean(v.power) } } } };
  },
  describeCommand({ action: a }) {
    return a.case === "setPower" ? \`power \${a.value ? "on" : "off"}\` : "(empty command)";
  },
};
`;
}
