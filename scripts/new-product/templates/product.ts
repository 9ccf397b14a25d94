import { cap, type KindNames } from "../names.js";

/** src/core/products/<file>.ts: the product module, registered in PRODUCTS. */
export function productModule(n: KindNames): string {
  const P = n.pascal;
  return `import type { Message } from "@bufbuild/protobuf";
import { type ${P}Command, ${P}DesiredSchema, ${P}ReportedSchema, ${P}Schema } from "../../../gen/tether/v1/${n.kind}_pb.js";
import type { Violations } from "../errors.js";
import { type Product, ProductKind } from "./product.js";
import { ${n.case}Sim, ON_W } from "./${n.file}-sim.js";
import { ${n.case}Words } from "./${n.file}-words.js";

/** ${cap(n.plural)}: an owner switches them on and off; they report power and the power they draw. TODO: describe. */
export const ${n.case}Product: Product = {
  case: "${n.case}",
  kindName: "${n.kind}",
  productKind: ProductKind.${n.upper},
  label: "${n.label}",
  pluralLabel: "${n.plural}",
  metrics: [{ name: "power_w", unit: "W", description: "electrical power drawn", min: 0, max: 2 * ON_W }],
  schema: ${P}Schema,
  desiredSchema: ${P}DesiredSchema,
  reportedSchema: ${P}ReportedSchema,
  words: ${n.case}Words,
  sim: ${n.case}Sim,
  // The desired state is a single optional bool: every value is valid.
  validateDesired(): void {},
  validateCommand(message: Message, field: string, v: Violations): void {
    const { action } = message as ${P}Command;
    if (action.case === undefined) v.add(\`\${field}.action\`, "is required: set_power");
  },
};
`;
}
