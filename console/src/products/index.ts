import type { Device, ProductKind } from "../../../gen/tether/v1/device_pb.js";
import { LINK_METRICS, type MetricInfo } from "../../../src/core/products/index.js";
import { coffeeMachineConsole } from "./coffee-machine.js";
import { ledConsole } from "./led.js";
import type { ConsoleProduct, ProductCase, StateRow } from "./product.js";
import { thermostatConsole } from "./thermostat.js";

export type { CommandDraft, ConsoleProduct, ProductCase, StateRow } from "./product.js";

/**
 * Every product type the console shows, keyed by its `Device.kind` case: a product added to the
 * contract without a console module here fails to compile.
 */
const BY_CASE: { readonly [C in ProductCase]: ConsoleProduct<C> } = {
  led: ledConsole,
  coffeeMachine: coffeeMachineConsole,
  thermostat: thermostatConsole,
};

for (const [c, p] of Object.entries(BY_CASE)) if (p.core.case !== c) throw new Error(`console product ${c} wraps the ${p.core.case} module`);

/** The products in the order selectors list them. */
export const PRODUCTS: readonly ConsoleProduct[] = Object.values(BY_CASE) as ConsoleProduct[];

/**
 * The product of a case, typed for any of its values. Used where the case and the value come
 * from one oneof (a device's kind, a command's kind), so they match though TypeScript cannot
 * correlate them.
 */
export function anyProduct(c: ProductCase): ConsoleProduct {
  return BY_CASE[c] as unknown as ConsoleProduct;
}

/** A device's product, or undefined for a kind this console does not know (a newer server). */
export function productOf(d: Device): ConsoleProduct | undefined {
  return d.kind.case === undefined ? undefined : PRODUCTS.find((p) => p.core.case === d.kind.case);
}

export function productByKindName(name: string): ConsoleProduct | undefined {
  return PRODUCTS.find((p) => p.core.kindName === name);
}

export function productByProductKind(k: ProductKind): ConsoleProduct | undefined {
  return PRODUCTS.find((p) => p.core.productKind === k);
}

/** How the console names a device's kind: `LED`, `Coffee machine`, `Unknown`. */
export function kindLabel(d: Device): string {
  const label = productOf(d)?.core.label ?? "unknown";
  return label.charAt(0).toUpperCase() + label.slice(1);
}

/** A device's state table rows (none for an unknown kind). */
export function stateRows(d: Device): StateRow[] {
  const p = productOf(d);
  return p && d.kind.case !== undefined ? p.stateRows(d.kind.value) : [];
}

/** The metrics a device of this product may send, its own first, then link metrics. */
export function metricsOf(p: ConsoleProduct | undefined): readonly MetricInfo[] {
  return [...(p?.core.metrics ?? []), ...LINK_METRICS];
}
