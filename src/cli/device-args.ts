import { create } from "@bufbuild/protobuf";
import type { Device } from "../../gen/tether/v1/device_pb.js";
import { type Product, PRODUCTS } from "../core/products/index.js";

/** Every desired-state flag some product offers (`--power`, `--brightness`, `--setpoint`, …), once each. */
export const DESIRED_FLAG_NAMES: readonly string[] = [...new Set(PRODUCTS.flatMap((p) => p.words.desiredFlags.map((f) => f.name)))];

/** One product's desired-state flags for usage lines: `--power on|off --brightness 0-100`. */
export function desiredUsage(product: Product): string {
  return product.words.desiredFlags.map((f) => `[--${f.name} ${f.usage}]`).join(" ");
}

/** The flags that describe a device, shared by `create` and `update`. */
export const DEVICE_FLAGS = {
  kind: { type: "string" },
  "display-name": { type: "string" },
  label: { type: "string", multiple: true },
  owner: { type: "string" },
  firmware: { type: "string" },
  etag: { type: "string" },
  // parseArgs is strict: every product's desired flags must be known, whichever kind they belong to.
  ...(Object.fromEntries(DESIRED_FLAG_NAMES.map((n) => [n, { type: "string" }])) as Record<string, { type: "string" }>),
} as const;

/** Parses `k=v` label flags; a bare `k=` sets an empty value. */
export function parseLabels(labels: string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of labels) {
    const i = l.indexOf("=");
    if (i <= 0) throw new Error(`--label ${l}: expected key=value`);
    out[l.slice(0, i)] = l.slice(i + 1);
  }
  return out;
}

/** The desired-state flags among parsed flag values, only those given. */
export function desiredFlagValues(values: Readonly<Record<string, unknown>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of DESIRED_FLAG_NAMES) if (typeof values[n] === "string") out[n] = values[n];
  return out;
}

/**
 * The `kind` oneof with the desired state the flags name, and the update-mask paths they set
 * (`<kind>.desired.<field>`, the proto field names). A flag another kind has but this one lacks is
 * a one-line error naming the flags this kind takes.
 */
export function desiredFromFlags(product: Product, flags: Readonly<Record<string, string>>): { kind: Device["kind"]; paths: string[] } {
  const own = new Set(product.words.desiredFlags.map((f) => f.name));
  const foreign = Object.keys(flags).filter((n) => !own.has(n));
  if (foreign.length > 0) {
    const takes = product.words.desiredFlags.map((f) => `--${f.name} ${f.usage}`).join(", ") || "no desired-state flags";
    throw new Error(
      `${foreign.map((n) => `--${n}`).join(", ")}: ${foreign.length > 1 ? "not flags" : "not a flag"} of kind ${product.kindName}, which takes ${takes}`,
    );
  }
  const { desired, paths } = product.words.parseDesired(flags);
  // The registry types the product message loosely; its `desired` field is the product's desired message.
  const value = create(product.schema, { desired } as never);
  return { kind: { case: product.case, value } as Device["kind"], paths: paths.map((p) => `${product.kindName}.desired.${p}`) };
}
