/**
 * Builds the web console with Vite's API. `node console/build.js --if-stale` (npm's `prestart`)
 * builds only when `console/dist/index.html` is missing or older than any console source or
 * generated contract file, so `npm start` after a pull serves the console that matches the code,
 * and costs a few milliseconds when nothing changed. Plain JavaScript (types in build.d.ts): the
 * check runs at every `npm start`, and starting a TypeScript loader for it cost ~2 s.
 */
import { readdirSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
// The console imports the product modules (labels, metrics, bounds) from the server's core.
const SOURCES = ["src", "public", "index.html", "vite.config.ts", "../gen", "../src/core/products"].map((p) => path.join(here, p));

/** @param {string} p @returns {number} the newest mtime of `p` and everything under it; 0 when missing */
function newest(p) {
  let st;
  try {
    st = statSync(p);
  } catch {
    return 0;
  }
  if (!st.isDirectory()) return st.mtimeMs;
  return Math.max(st.mtimeMs, ...readdirSync(p).map((e) => newest(path.join(p, e))));
}

/** True when the built console is missing or older than its sources. */
export function consoleIsStale() {
  const built = newest(path.join(here, "dist/index.html"));
  return built === 0 || Math.max(...SOURCES.map(newest)) > built;
}

/** @param {{ quiet?: boolean }} [opts] */
export async function buildConsole(opts = {}) {
  const { build } = await import("vite");
  await build({ configFile: path.join(here, "vite.config.ts"), logLevel: opts.quiet ? "warn" : "info" });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (process.argv.includes("--if-stale") && !consoleIsStale()) process.exit(0);
  try {
    await buildConsole();
  } catch (err) {
    // The API works without the console: say so, and let `npm start` go on.
    console.error(`web console build failed (Tether still starts; / will say how to build it): ${err instanceof Error ? err.message : String(err)}`);
    process.exit(process.argv.includes("--if-stale") ? 0 : 1);
  }
}
