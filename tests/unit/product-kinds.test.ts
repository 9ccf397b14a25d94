import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { PRODUCTS } from "../../src/core/products/index.js";

const ROOT = path.resolve(import.meta.dirname, "../..");
/** Where code lives. proto/, gen/, migrations/ (history) and tests/ may name kinds; products/ folders must. */
const TREES = ["src", "console/src", "bin", "scripts"];

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === "products" ? [] : files(p);
    return /\.(ts|tsx|js|mjs)$/.test(e.name) ? [p] : [];
  });
}

/**
 * Everything that names one product: its kind name (`coffee_machine`), oneof case (`coffeeMachine`),
 * label (`coffee machine`), message names (`CoffeeMachine…`) and generated module (`coffee_machine_pb`).
 */
function namesOf(p: (typeof PRODUCTS)[number]): RegExp {
  const words = [p.kindName, p.case, p.label, p.pluralLabel, p.schema.name].map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  return new RegExp(`\\b(${words.join("|")})(?![a-z])|${p.schema.name}[A-Z_]\\w*|\\b${p.kindName}_pb\\b`);
}

describe("a product type lives in its own modules", () => {
  it("no file outside products/ folders names a product kind", () => {
    const offenders: string[] = [];
    for (const tree of TREES) {
      for (const f of files(path.join(ROOT, tree))) {
        const rel = path.relative(ROOT, f);
        readFileSync(f, "utf8")
          .split("\n")
          .forEach((line, i) => {
            for (const p of PRODUCTS) {
              const m = namesOf(p).exec(line);
              if (!m) continue;
              offenders.push(`${rel}:${i + 1} names ${p.kindName} ("${m[0]}")`);
            }
          });
      }
    }
    expect(offenders).toEqual([]);
  });

  it("the pattern finds each product's names (so the test above can fail)", () => {
    for (const p of PRODUCTS) {
      expect(namesOf(p).test(`kind: "${p.kindName}"`)).toBe(true);
      expect(namesOf(p).test(`case "${p.case}":`)).toBe(true);
      expect(namesOf(p).test(`import { ${p.schema.name}Schema } from "../../gen/tether/v1/${p.kindName}_pb.js";`)).toBe(true);
    }
  });
});
