/**
 * Runs every `tests/bench/*.bench.ts` one after the other, each in its own Node process (so one
 * benchmark's leftovers cannot skew the next), with the current environment (BENCH_* variables).
 * Benchmarks print figures and never fail on timing; this exits non-zero only if one crashed.
 */
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const only = process.argv.slice(2);
const files = readdirSync(here)
  .filter((f) => f.endsWith(".bench.ts"))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort();
let crashed = 0;
for (const f of files) {
  console.log(`\n=== ${f} ===`);
  const r = spawnSync(process.execPath, ["--import", "tsx", path.join(here, f)], { stdio: "inherit", env: process.env });
  if (r.status !== 0) {
    crashed++;
    console.error(`${f} exited with ${r.status ?? r.signal}`);
  }
}
process.exit(crashed ? 1 : 0);
