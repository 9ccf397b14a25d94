import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureCToolchain } from "../helpers/c-toolchain.js";

/*
 * `npm run new-product -- kettle` in a copy of the repository (its files as git lists them, with
 * node_modules linked): the skeleton it writes must pass what the registry's own tests, buf lint and
 * both TypeScript projects demand, and the C reference device must still build. A refused run
 * changes nothing.
 */
const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, "../..");
const KIND = "kettle";
/** tsc takes 30-60 s per project on a 2-core machine, and a loaded one makes every step several times slower. */
const SLOW = 240_000;

let copy: string;
/** This process's environment without vitest's own variables, which a nested vitest would read as its own. */
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("VITEST") && k !== "TETHER_TEST_SUITE"));

/** Runs a command in the copy; resolves with its output and exit code whatever the code. */
async function inCopy(cmd: string, args: string[], timeout = SLOW): Promise<{ code: number; out: string }> {
  try {
    const r = await run(cmd, args, { cwd: copy, timeout, maxBuffer: 32 << 20, env: { ...env, FORCE_COLOR: "0", NO_COLOR: "1" } });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === "number" ? err.code : -1, out: `${err.stdout ?? ""}${err.stderr ?? ""}` };
  }
}

const newProduct = (...args: string[]) => inCopy("npm", ["run", "--silent", "new-product", "--", ...args]);

/** Every file of the copy (node_modules aside) with a hash of its content. */
async function tree(dir = copy): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.name === "node_modules" || e.name === ".git") continue;
    if (e.isDirectory()) for (const [k, v] of await tree(p)) out.set(k, v);
    else
      out.set(
        path.relative(copy, p),
        createHash("sha256")
          .update(await readFile(p))
          .digest("hex"),
      );
  }
  return out;
}

beforeAll(async () => {
  copy = await mkdtemp(path.join(tmpdir(), "tether-new-product-"));
  // Tracked files and new ones not yet committed, as they are in the working tree.
  const { stdout } = await run("git", ["ls-files", "--cached", "--others", "--exclude-standard", "-z"], { cwd: ROOT, maxBuffer: 32 << 20 });
  for (const f of stdout.split("\0").filter(Boolean)) {
    await mkdir(path.dirname(path.join(copy, f)), { recursive: true });
    await copyFile(path.join(ROOT, f), path.join(copy, f)).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== "ENOENT") throw e; // deleted in the working tree, not yet in git
    });
  }
  await symlink(path.join(ROOT, "node_modules"), path.join(copy, "node_modules"));
  // A clone is a git repository, and some tests ask git what it tracks (readme-links).
  await run("git", ["init", "-q"], { cwd: copy });
  await run("git", ["add", "-A"], { cwd: copy, maxBuffer: 32 << 20 });
}, SLOW);

afterAll(async () => {
  if (copy) await rm(copy, { recursive: true, force: true });
});

describe("npm run new-product", () => {
  it(
    "writes the skeleton, adds the oneof arms with the next free numbers and registers it",
    async () => {
      const r = await newProduct(KIND);
      expect(r.code, r.out).toBe(0);
      expect(r.out).toContain(`created proto/tether/v1/${KIND}.proto`);
      expect(r.out).toContain("Next steps");
      const device = await readFile(path.join(copy, "proto/tether/v1/device.proto"), "utf8");
      expect(device).toContain(`import "tether/v1/${KIND}.proto";`);
      // The shipped arms end at 22 and 3 (ProductKind); the new ones follow.
      expect(device).toMatch(/\/\/ A kettle\.\n\s+Kettle kettle = 23;\n\s+\}/);
      expect(device).toMatch(/\/\/ Device\.kettle\.\n\s+PRODUCT_KIND_KETTLE = 4;/);
      const command = await readFile(path.join(copy, "proto/tether/v1/command.proto"), "utf8");
      expect(command).toMatch(/KettleCommand kettle = 4;/);
      expect(command).toMatch(/KettleResult kettle = 4;/);
      expect(await readFile(path.join(copy, "proto/tether/device/v1/downlink.proto"), "utf8")).toMatch(/tether\.v1\.KettleDesired kettle = 13;/);
      expect(await readFile(path.join(copy, "proto/tether/device/v1/uplink.proto"), "utf8")).toMatch(/tether\.v1\.KettleReported kettle = 13;/);
      expect(await readFile(path.join(copy, "src/core/products/index.ts"), "utf8")).toMatch(/PRODUCTS: readonly Product\[\] = \[.*, kettleProduct\]/);
      expect(await readFile(path.join(copy, "console/src/products/index.ts"), "utf8")).toContain("  kettle: kettleConsole,\n};");
      expect(await readFile(path.join(copy, "gen/tether/v1/kettle_pb.ts"), "utf8")).toContain("KettleCommandSchema");
    },
    SLOW,
  );

  it(
    "refuses the same kind again, an invalid name, a reserved word and a name code already uses, and changes nothing",
    async () => {
      const before = await tree();
      const again = await newProduct(KIND);
      expect(again.code).toBe(1);
      expect(again.out).toContain(`the product kind "${KIND}" already exists`);
      const invalid = await newProduct("Smart-Plug");
      expect(invalid.code).toBe(1);
      expect(invalid.out).toContain("is not a snake_case kind name");
      const reserved = await newProduct("class");
      expect(reserved.code).toBe(1);
      expect(reserved.out).toContain("is a reserved word");
      // `name` is a Device field, and words like it are all over the code outside products/.
      const taken = await newProduct("name");
      expect(taken.code).toBe(1);
      expect(taken.out).toContain('Device (proto/tether/v1/device.proto) already declares "name"');
      expect(taken.out).toContain("tests/unit/product-kinds.test.ts would fail");
      for (const r of [again, invalid, reserved, taken]) expect(r.out).toContain("nothing was changed");
      expect(await tree()).toEqual(before);
    },
    2 * SLOW,
  );

  it(
    "undoes every write when a later step fails (here buf lint, over a contract already broken)",
    async () => {
      const user = path.join(copy, "proto/tether/v1/user.proto");
      const original = await readFile(user, "utf8");
      await writeFile(user, `${original}\n// Breaks the lint rule FIELD_LOWER_SNAKE_CASE.\nmessage LintBreaker {\n  // Badly named.\n  bool BadName = 1;\n}\n`);
      try {
        const before = await tree();
        const r = await newProduct("toaster");
        expect(r.code).toBe(1);
        expect(r.out).toContain("every change was undone");
        expect(await tree()).toEqual(before);
      } finally {
        await writeFile(user, original);
      }
    },
    SLOW,
  );

  it(
    "leaves a contract buf lint accepts",
    async () => {
      const r = await inCopy("npx", ["buf", "lint"]);
      expect(r.code, r.out).toBe(0);
    },
    SLOW,
  );

  it(
    "compiles: the server and the console",
    async () => {
      const server = await inCopy("npx", ["tsc", "--noEmit"]);
      expect(server.code, server.out).toBe(0);
      const console_ = await inCopy("npx", ["tsc", "-p", "console"]);
      expect(console_.code, console_.out).toBe(0);
    },
    2 * SLOW,
  );

  it(
    "passes the whole unit suite (the registry's own tests among them) and its generated unit test",
    async () => {
      const r = await inCopy("npx", ["vitest", "run", "--project", "unit"]);
      expect(r.code, r.out).toBe(0);
      expect(r.out).toContain(`tests/unit/${KIND}-product.test.ts`);
      expect(r.out).not.toMatch(/\bfailed\b/);
    },
    SLOW,
  );

  it(
    "still builds the C reference device (its Makefile finds the new proto through command.proto)",
    async (ctx) => {
      const unavailable = await ensureCToolchain();
      if (unavailable) ctx.skip(unavailable);
      const r = await inCopy("make", ["-s", "-C", "tests/c-device", `OUT=${path.join(copy, "c-build")}`]);
      expect(r.code, r.out).toBe(0);
      const gen = await readdir(path.join(copy, "c-build/gen/tether/v1"));
      expect(gen).toContain(`${KIND}.pb.h`);
    },
    SLOW,
  );
});
