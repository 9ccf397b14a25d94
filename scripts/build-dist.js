/**
 * Compiles src/ and gen/ (TypeScript) to plain JavaScript in dist/ with esbuild, so `tether` and
 * `npm start` run without a TypeScript loader. `npm install` runs it (`prepare`); bin/tether.js
 * runs it again when src/ or gen/ changed since (a developer edited and starts).
 *
 * esbuild, not tsc: it only strips types (the type check is `npm run lint`) and takes well under a
 * second where tsc takes tens of seconds on a small board, so a stale dist/ can be rebuilt at
 * start; and it is a runtime dependency, so `npm ci --omit=dev` (the container) builds too.
 *
 * A bundle from src/main.ts, split at every dynamic import (each CLI command is one: dispatch.ts;
 * the server is another, so `tether devices list` never loads it), with our code, gen/ and the
 * dependencies inside: Node then reads a few dozen files instead of compiling ~250 ES modules and
 * resolving hundreds of CommonJS files of node_modules one by one (measured on 2 busy cores:
 * `tether devices --help` 0.25 s → 0.13 s file by file → bundled; the server's modules 0.51 s →
 * 0.30 s with its dependencies bundled too). EXTERNAL lists what stays an import of node_modules.
 * Plain JavaScript with JSDoc types: this file must run before anything is compiled.
 *
 *   node scripts/build-dist.js              build now (npm run build)
 *   node scripts/build-dist.js --if-stale   only if src/ or gen/ changed since the last build
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const OUT = path.join(ROOT, "dist");
/** What is compiled; the build script itself counts as a source (a change to it rebuilds). */
const SOURCE_DIRS = ["src", "gen"];
const STAMP = path.join(OUT, ".sources.json");
/**
 * Dependencies left as imports of node_modules: PGlite reads its WASM and data files next to its
 * own modules; pino resolves its worker files from its folder; node-pg-migrate (with pg) and
 * amqplib are loaded only when migrating or with AMQP_URL. The development tools never run in dist/.
 */
const EXTERNAL = ["@electric-sql/*", "pino", "node-pg-migrate", "pg", "amqplib", "esbuild"];
/** Chunks a rebuild no longer names are kept this long: a running server may still import one lazily. */
const OLD_CHUNK_MS = 24 * 3600_000;

/**
 * @param {string} dir
 * @param {(file: string, mtimeMs: number) => void} visit called for every file and directory
 */
function walk(dir, visit) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  visit(dir, statSync(dir).mtimeMs);
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, visit);
    else visit(p, statSync(p).mtimeMs);
  }
}

/**
 * The sources' state: the newest mtime of any file or folder (a folder's changes when an entry is
 * added, removed or renamed) and how many there are. A few milliseconds for the whole tree.
 * @returns {{ newest: number, entries: number }}
 */
export function sourceState() {
  let newest = statSync(fileURLToPath(import.meta.url)).mtimeMs;
  let entries = 0;
  for (const d of SOURCE_DIRS)
    walk(path.join(ROOT, d), (_, m) => {
      newest = Math.max(newest, m);
      entries++;
    });
  return { newest, entries };
}

/** True when dist/ is missing or was built from other sources than those on disk now. */
export function distIsStale() {
  let stamp;
  try {
    stamp = JSON.parse(readFileSync(STAMP, "utf8"));
  } catch {
    return true;
  }
  const now = sourceState();
  return stamp.newest !== now.newest || stamp.entries !== now.entries;
}

/** Writes a file by renaming a temporary one over it, so a process starting meanwhile never reads half a module. */
function writeAtomically(file, contents) {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, contents);
  renameSync(tmp, file);
}

/** EXTERNAL and every development dependency, with their subpaths. */
function externals() {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8"));
  return [...EXTERNAL, ...Object.keys(pkg.devDependencies)].flatMap((n) => (n.endsWith("/*") ? [n] : [n, `${n}/*`]));
}

/**
 * Builds dist/main.js and its chunks; returns how many source files went in. Chunks are written
 * before main.js, which names them, so a process starting during a rebuild loads one build or the other.
 */
export async function buildDist() {
  const state = sourceState();
  const { build } = await import("esbuild");
  const result = await build({
    entryPoints: [path.join(ROOT, "src/main.ts")],
    outdir: OUT,
    bundle: true,
    splitting: true,
    chunkNames: "chunks/[name]-[hash]",
    format: "esm",
    platform: "node",
    target: "node20",
    external: externals(),
    // Bundled CommonJS calls require() for Node's modules; an ES module has none of its own.
    banner: { js: 'import { createRequire as __tetherRequire } from "node:module"; const require = __tetherRequire(import.meta.url);' },
    absWorkingDir: ROOT,
    tsconfig: path.join(ROOT, "tsconfig.json"),
    metafile: true,
    write: false,
    logLevel: "warning",
  });
  // The embedded database's worker thread is plain JavaScript, started by file (database.ts finds
  // it at the build's root): copied as it is.
  writeAtomically(path.join(OUT, "pglite-worker.mjs"), readFileSync(path.join(ROOT, "src/store/pglite-worker.mjs")));
  const entry = path.join(OUT, "main.js");
  const outputs = result.outputFiles.sort((a, b) => Number(a.path === entry) - Number(b.path === entry));
  for (const f of outputs) writeAtomically(f.path, f.contents);
  const written = new Set(outputs.map((f) => f.path));
  walk(path.join(OUT, "chunks"), (p, mtimeMs) => {
    if (p.endsWith(".js") && !written.has(p) && Date.now() - mtimeMs > OLD_CHUNK_MS) rmSync(p, { force: true });
  });
  // Last: a process that sees this stamp sees the build it describes.
  writeAtomically(STAMP, `${JSON.stringify(state)}\n`);
  return Object.keys(result.metafile.inputs).filter((f) => /^(src|gen)\//.test(f)).length;
}

/**
 * bin/tether.js in a checkout: rebuilds when the sources changed, saying so in one line on stderr.
 * Where dist/ cannot be written (a read-only install: systemd's ProtectSystem=strict) the build
 * that is there runs, with a line saying how to bring it up to date.
 */
export async function rebuildIfStale() {
  if (!distIsStale()) return;
  const started = Date.now();
  try {
    const files = await buildDist();
    process.stderr.write(`tether: src/ or gen/ changed since the last build: compiled ${files} files to dist/ in ${Date.now() - started} ms\n`);
  } catch (err) {
    if (!existsSync(path.join(OUT, "main.js"))) throw err;
    const why = err instanceof Error ? err.message.split("\n")[0] : String(err);
    process.stderr.write(
      `tether: src/ or gen/ changed since dist/ was built, which cannot be rebuilt here (${why}): running the old build; run npm run build\n`,
    );
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (process.argv.includes("--if-stale") && !distIsStale()) process.exit(0);
  const started = Date.now();
  const files = await buildDist();
  console.log(`compiled ${files} files from src/ and gen/ to dist/ in ${Date.now() - started} ms`);
}
