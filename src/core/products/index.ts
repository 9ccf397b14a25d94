import { coffeeMachineProduct } from "./coffee-machine.js";
import { ledProduct } from "./led.js";
import { thermostatProduct } from "./thermostat.js";
import type { MetricInfo, Product, ProductCase } from "./product.js";

export type { MetricInfo, Product, ProductCase } from "./product.js";

/**
 * Metrics any device may send whatever its product: link quality. Streamed live, not stored, by
 * default (`TETHER_TELEMETRY_EPHEMERAL`).
 */
export const LINK_METRICS: readonly MetricInfo[] = [
  { name: "signal_strength", unit: "dBm", description: "radio signal strength", min: -100, max: 0 },
  { name: "rssi", unit: "dBm", description: "received signal strength", min: -100, max: 0 },
];

/** Every product type Tether knows, in one table. */
export const PRODUCTS: readonly Product[] = [ledProduct, coffeeMachineProduct, thermostatProduct];

/** The product for a `Device.kind` case. */
export function productByCase(c: ProductCase): Product {
  const p = PRODUCTS.find((x) => x.case === c);
  if (!p) throw new Error(`no product module for kind case ${c}`);
  return p;
}

/** The product a person names by its kind name or one of its aliases (`coffee`: `words.aliases`), or undefined. */
export function productNamed(name: string): Product | undefined {
  return PRODUCTS.find((p) => p.kindName === name || p.words.aliases.includes(name));
}

/** The product for a storage/filter name such as `coffee_machine`, or undefined. */
export function productByKindName(name: string): Product | undefined {
  return PRODUCTS.find((x) => x.kindName === name);
}

/** The kind names for a message: `led, coffee_machine or thermostat`. */
export function kindNameList(conjunction = "or"): string {
  const names = PRODUCTS.map((p) => p.kindName);
  return names.length < 2 ? names.join("") : `${names.slice(0, -1).join(", ")} ${conjunction} ${names.at(-1)}`;
}
