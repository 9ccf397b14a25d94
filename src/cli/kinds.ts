import { type Product, PRODUCTS, productNamed } from "../core/products/index.js";

export { productNamed };

/**
 * The CLI's view of the product registry: which product a typed kind or action word means. The CLI
 * names no kind itself, so a new product's words reach every command without a change here.
 */

/** Every kind name, `|`-separated, for usage lines and errors. */
export const KIND_CHOICES = PRODUCTS.map((p) => p.kindName).join("|");

/** The first product, for help examples that must show a concrete kind. */
export const EXAMPLE_PRODUCT: Product = PRODUCTS[0]!;

/** Like `productNamed`, but an unknown name is a one-line error: `--kind x: expected <kind>|<kind>|…`. */
export function productOf(name: string, what = "--kind"): Product {
  const p = productNamed(name);
  if (!p) throw new Error(`${what} ${name}: expected ${KIND_CHOICES}`);
  return p;
}

/** The products whose command words include `action` (`power` → several, `brightness` → one). */
export function productsWithAction(action: string): Product[] {
  return PRODUCTS.filter((p) => p.words.actions.includes(action));
}

/** Each product's actions, one line per product: `<label>:   <words.usage>`, labels aligned. */
export const TASK_ACTIONS = (() => {
  const width = Math.max(...PRODUCTS.map((p) => p.label.length)) + 2;
  return PRODUCTS.map((p) => `${`${p.label}:`.padEnd(width)}${p.words.usage}`).join("\n");
})();

/**
 * The one product whose command words have `action`, for a command whose target names no kind.
 * Several products (`power`) is an error that `howToName` completes (how to name the kind); none
 * is an error listing every product's actions.
 */
export function productForAction(action: string, howToName: (kinds: readonly Product[]) => string): Product {
  const having = productsWithAction(action);
  if (having.length === 1) return having[0]!;
  if (having.length === 0) throw new Error(`unknown action "${action}": expected\n${TASK_ACTIONS}`);
  throw new Error(`"${action}" is an action of ${having.map((p) => p.kindName).join(" and ")}; ${howToName(having)}`);
}

/** A typical command whose action only one kind has, for help texts: it needs no `--kind`. */
export const IMPLIED_KIND_EXAMPLE: string =
  PRODUCTS.map((p) => p.words.example).find((e) => productsWithAction(e.split(" ")[0]!).length === 1) ?? EXAMPLE_PRODUCT.words.example;
