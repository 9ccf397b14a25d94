import { execFileSync } from "node:child_process";
import path from "node:path";

/**
 * vitest globalSetup: compiles dist/ once, before any test spawns bin/tether.js, when src/ or gen/
 * changed since the last build. bin/tether.js would rebuild by itself, but then in the middle of a
 * test, with a line on stderr that a test may be reading, and in several test processes at once.
 */
export default function setup(): void {
  execFileSync(process.execPath, [path.resolve(import.meta.dirname, "../../scripts/build-dist.js"), "--if-stale"], { stdio: "inherit" });
}
