/**
 * Registers a product module in the two registries: `PRODUCTS` in src/core/products/index.ts and
 * `BY_CASE` in console/src/products/index.ts. The anchors are the registries' own declarations; when
 * one is not found the edit throws rather than guess.
 */
import type { KindNames } from "./names.js";

/** Inserts `line` among the lines matching `sibling`, in alphabetical order of their text. */
function insertSorted(text: string, sibling: RegExp, line: string): string {
  const lines = text.split("\n");
  const at = lines.map((l, i) => ({ l, i })).filter((x) => sibling.test(x.l));
  if (at.length === 0) throw new Error(`no line like ${sibling} to place "${line}" beside`);
  const after = at.find((x) => x.l > line);
  lines.splice(after ? after.i : at.at(-1)!.i + 1, 0, line);
  return lines.join("\n");
}

/** src/core/products/index.ts: the import, and the module appended to `PRODUCTS` (selectors list it last). */
export function registerCore(index: string, n: KindNames): string {
  const withImport = insertSorted(index, /^import \{ \w+Product \} from "\.\/[\w-]+\.js";$/, `import { ${n.case}Product } from "./${n.file}.js";`);
  const table = /(export const PRODUCTS: readonly Product\[\] = \[)([^\]]*)(\];)/;
  if (!table.test(withImport)) throw new Error("the PRODUCTS table was not found");
  return withImport.replace(table, (_m, head: string, items: string, tail: string) => {
    const names = [...items.split(","), `${n.case}Product`].map((s) => s.trim()).filter(Boolean);
    const one = `${head}${names.join(", ")}${tail}`;
    // One line while it fits biome's line width (biome.json), as the formatter would keep it.
    return one.length <= 160 ? one : `${head}\n${names.map((x) => `  ${x},`).join("\n")}\n${tail}`;
  });
}

/** console/src/products/index.ts: the import, and the case appended to `BY_CASE`. */
export function registerConsole(index: string, n: KindNames): string {
  const withImport = insertSorted(index, /^import \{ \w+Console \} from "\.\/[\w-]+\.js";$/, `import { ${n.case}Console } from "./${n.file}.js";`);
  const lines = withImport.split("\n");
  const open = lines.findIndex((l) => /^const BY_CASE\b.*= \{$/.test(l));
  const close = open < 0 ? -1 : lines.findIndex((l, i) => i > open && l === "};");
  if (close < 0) throw new Error("the BY_CASE table was not found");
  lines.splice(close, 0, `  ${n.case}: ${n.case}Console,`);
  return lines.join("\n");
}
