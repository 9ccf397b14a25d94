import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const BIN = path.resolve(import.meta.dirname, "../../bin/tether.js");
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "tether-cli-loading-"));
  // A module hook that appends every URL Node loads to `loaded.txt`.
  await writeFile(
    path.join(dir, "hooks.mjs"),
    `import { appendFileSync } from "node:fs";
export async function load(url, context, next) { appendFileSync(${JSON.stringify(path.join(dir, "loaded.txt"))}, url + "\\n"); return next(url, context); }`,
  );
  await writeFile(
    path.join(dir, "register.mjs"),
    `import { register } from "node:module"; register(${JSON.stringify(pathToFileURL(path.join(dir, "hooks.mjs")).href)});`,
  );
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The modules `tether <args>` loads (the compiled CLI, as `npx tether` runs it). */
async function loadedBy(...args: string[]): Promise<string[]> {
  await rm(path.join(dir, "loaded.txt"), { force: true });
  await run(process.execPath, ["--import", path.join(dir, "register.mjs"), BIN, ...args], { env: { PATH: process.env.PATH, HOME: dir } });
  return (await readFile(path.join(dir, "loaded.txt"), "utf8")).trim().split("\n");
}

describe("the compiled CLI", () => {
  it("runs dist/ (plain JavaScript, no TypeScript loader)", async () => {
    const loaded = await loadedBy("--help");
    expect(loaded).toContainEqual(expect.stringMatching(/\/dist\/main\.js$/));
    expect(loaded.filter((u) => /\.ts$|\/tsx\//.test(u))).toEqual([]);
  });

  it.each(["--help", "devices --help", "tasks list --help", "firmware verify --help"])(
    "tether %s loads neither the server nor its dependencies",
    async (line) => {
      const loaded = await loadedBy(...line.split(" "));
      // The server is the `app` chunk (src/app.ts, imported by `serve` only); PGlite, pino and
      // node-pg-migrate stay imports of node_modules (scripts/build-dist.js), so they would show here.
      expect(loaded.filter((u) => /\/chunks\/(app|serve)-|@electric-sql|\/pino\/|node-pg-migrate|amqplib/.test(u))).toEqual([]);
    },
  );

  it("tether mcp --help loads neither the MCP SDK nor the tools (only `tether mcp` does)", async () => {
    // The SDK and the tools are bundled into the chunk of src/mcp/stdio.ts (and the server's http-endpoint).
    const sdk = (urls: string[]) => urls.filter((u) => /\/chunks\/(stdio|http-endpoint|app|serve)-|@modelcontextprotocol/.test(u));
    expect(sdk(await loadedBy("mcp", "--help"))).toEqual([]);
    // The control: `tether mcp` itself loads the stdio chunk (here it then fails: no certificate to read).
    await rm(path.join(dir, "loaded.txt"), { force: true });
    const ran = await run(process.execPath, ["--import", path.join(dir, "register.mjs"), BIN, "mcp"], { env: { PATH: process.env.PATH, HOME: dir } }).catch(
      (err: { code?: number }) => err,
    );
    expect(ran).toMatchObject({ code: 1 });
    expect(sdk((await readFile(path.join(dir, "loaded.txt"), "utf8")).trim().split("\n"))).toEqual([expect.stringMatching(/\/chunks\/stdio-/)]);
  });
});
