import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(import.meta.dirname, "../..");

/** Files and folders a clone has: what git tracks, not what a working copy happens to contain. */
function tracked(): Set<string> {
  const files = execFileSync("git", ["ls-files", "-z"], { cwd: ROOT, encoding: "utf8" }).split("\0").filter(Boolean);
  const all = new Set(files);
  for (const f of files) {
    const parts = f.split("/");
    for (let i = 1; i < parts.length; i++) all.add(parts.slice(0, i).join("/"));
  }
  return all;
}

/** Relative Markdown link targets (`[text](target)`), without anchors; web links and in-page anchors are not files. */
function relativeLinks(markdown: string): string[] {
  return [...markdown.matchAll(/\]\(([^)\s]+)\)/g)]
    .map((m) => m[1]!)
    .filter((t) => !/^[a-z]+:/i.test(t) && !t.startsWith("#"))
    .map((t) => t.split("#")[0]!);
}

describe("README.md", () => {
  const readme = readFileSync(path.join(ROOT, "README.md"), "utf8");

  it("links only to files and folders a clone has", () => {
    const have = tracked();
    const missing = relativeLinks(readme).filter((t) => !have.has(path.posix.normalize(t).replace(/\/$/, "")));
    expect(missing).toEqual([]);
  });

  it("finds the links it checks (so the test above can fail)", () => {
    expect(relativeLinks("see [x](../shared/DESIGN.md), [y](proto/#top), [z](https://example.com) and [w](#quick-start)")).toEqual([
      "../shared/DESIGN.md",
      "proto/",
    ]);
    expect(tracked().has("../shared/DESIGN.md")).toBe(false);
    expect(relativeLinks(readme).length).toBeGreaterThan(5);
  });
});
