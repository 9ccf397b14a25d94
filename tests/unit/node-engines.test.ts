import { readFileSync } from "node:fs";
import semver from "semver";
import { describe, expect, it } from "vitest";

/**
 * The Node.js lines Tether supports, each with the oldest release of that line it supports.
 * The README's "Supported Node.js versions" names the same; CI runs the suite on 20 and 24.
 * The minimums are what the locked dependencies need (yargs, rolldown: ^20.19 / ^22.13), not a
 * guess: the last test below fails if a dependency update raises them.
 */
const SUPPORTED: Record<string, string> = { "20": "20.19.0", "22": "22.13.0", "24": "24.0.0" };

const pkg = JSON.parse(readFileSync("package.json", "utf8")) as { engines: { node: string } };
const lock = JSON.parse(readFileSync("package-lock.json", "utf8")) as {
  packages: Record<string, { engines?: { node?: string } | string[]; optional?: boolean }>;
};

describe("package.json engines", () => {
  it("admits every supported LTS line, from its oldest supported release to its newest", () => {
    for (const [line, oldest] of Object.entries(SUPPORTED)) {
      expect(semver.satisfies(oldest, pkg.engines.node), `Node ${oldest}`).toBe(true);
      expect(semver.satisfies(`${line}.99.0`, pkg.engines.node), `Node ${line}.99`).toBe(true);
    }
  });

  it("admits the Node that runs this test (CI runs it on 20 and on 24)", () => {
    expect(semver.satisfies(process.versions.node, pkg.engines.node), `Node ${process.versions.node} vs ${pkg.engines.node}`).toBe(true);
  });

  it("claims no release that a locked dependency refuses (engine-strict would stop npm install there)", () => {
    const refusals: string[] = [];
    for (const [where, entry] of Object.entries(lock.packages)) {
      // npm skips an optional dependency whose engines do not match instead of failing the install.
      const range = Array.isArray(entry.engines) ? undefined : entry.engines?.node;
      if (where === "" || entry.optional || range === undefined) continue;
      for (const oldest of Object.values(SUPPORTED)) {
        if (!semver.satisfies(oldest, range)) refusals.push(`${where.replace(/^.*node_modules\//, "")} needs node ${range}, not ${oldest}`);
      }
    }
    expect(refusals).toEqual([]);
  });
});
