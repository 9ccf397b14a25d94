import type { KindNames } from "../names.js";

/** src/core/products/<file>-words.ts: how the CLI types this product's commands and desired state. */
export function wordsModule(n: KindNames): string {
  const P = n.pascal;
  return `import { create, type Message, type MessageInitShape } from "@bufbuild/protobuf";
import { type ${P}Command, type ${P}CommandSchema, ${P}DesiredSchema, type ${P}Reported, type ${P}Result } from "../../../gen/tether/v1/${n.kind}_pb.js";
import { type CommandInit, type CommandWords, need, parseOnOff, parsePowerFlag } from "./command-words.js";

const USAGE = "power on|off";

const command = (action: MessageInitShape<typeof ${P}CommandSchema>["action"]): CommandInit => ({ kind: { case: "${n.case}", value: { action } } });

/** The set fields of a reported state, e.g. \`power on\`. */
function stateText(s: ${P}Reported): string {
  return s.power === undefined ? "" : \`power \${s.power ? "on" : "off"}\`;
}

/** The CLI's words for ${n.plural}. */
export const ${n.case}Words: CommandWords = {
  aliases: [],
  actions: ["power"],
  usage: USAGE,
  example: "power on",
  parse(action, value) {
    if (action === "power") return command({ case: "setPower", value: parseOnOff(action, need(action, value, USAGE)) });
    throw new Error(\`unknown action "\${action}": expected \${USAGE}\`);
  },
  describe(message: Message) {
    const { action } = message as ${P}Command;
    return action.case === "setPower" ? \`power \${action.value ? "on" : "off"}\` : "-";
  },
  describeResult(message: Message) {
    const { state } = message as ${P}Result;
    return state ? stateText(state) : "";
  },
  desiredFlags: [{ name: "power", usage: "on|off" }],
  parseDesired(f) {
    const s = create(${P}DesiredSchema);
    const paths: string[] = [];
    if (f.power !== undefined) (s.power = parsePowerFlag(f.power)), paths.push("power");
    return { desired: s, paths };
  },
};
`;
}
