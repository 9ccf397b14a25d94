/**
 * What every bench script shares: env settings, crash recording, the commit measured, cleanup in
 * reverse order, the results file, and a main() runner that insists the process exits by itself.
 */
import { execFileSync } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

const BENCH_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** A numeric BENCH_* setting: `def` when unset, a readable error when not a number ≥ `min`. */
export function envNumber(name: string, def: number, min = 0): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === "") return def;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < min) throw new Error(`${name}=${raw}: expected a number ≥ ${min}`);
  return v;
}

/**
 * Errors nobody caught (in Tether, its libraries or the script). Node would exit on the first;
 * the benchmark records them and carries on so the run still reports, and prints them at the end.
 */
export function recordProcessErrors(): string[] {
  const errors: string[] = [];
  const record = (kind: string) => (err: unknown) => {
    const text = err instanceof Error ? (err.stack ?? err.message) : String(err);
    if (errors.length === 0) console.error(`\n!! ${kind} during the benchmark (recorded, run continues):\n${text}\n`);
    errors.push(`${kind}: ${text}`);
  };
  process.on("uncaughtException", record("uncaught exception"));
  process.on("unhandledRejection", record("unhandled rejection"));
  return errors;
}

/** The commit measured, marked when src/ has uncommitted changes. */
export function gitDescribe(): string {
  try {
    const commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: BENCH_DIR, encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--", "src"], { cwd: BENCH_DIR, encoding: "utf8" }).trim() !== "";
    return dirty ? `${commit} (src modified)` : commit;
  } catch {
    return "unknown";
  }
}

/** Cleanup steps run newest first; one failing does not stop the others. */
export function createCleanups(): { push(fn: () => Promise<unknown>): void; run(): Promise<void> } {
  const steps: Array<() => Promise<unknown>> = [];
  return {
    push: (fn) => void steps.push(fn),
    async run() {
      for (const fn of steps.splice(0).reverse()) {
        try {
          await fn();
        } catch (err) {
          console.error(`cleanup: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    },
  };
}

/** Writes `tests/bench/results/{name}-latest.json` (git-ignored) and says where. */
export async function writeResults(name: string, results: unknown): Promise<void> {
  const out = path.join(BENCH_DIR, "results", `${name}-latest.json`);
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(out, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`\nResults written to ${path.relative(process.cwd(), out)}`);
}

/** Runs a bench's main(); the process must then exit by itself, and says which handle lingers if not. */
export function runBench(main: () => Promise<void>): void {
  main().then(
    () => {
      setTimeout(() => {
        console.error(`warning: still running 5 s after shutdown; open handles: ${process.getActiveResourcesInfo().join(", ")}`);
        process.exit(0);
      }, 5000).unref();
    },
    (err: unknown) => {
      console.error("benchmark failed:", err);
      process.exit(1);
    },
  );
}

/** A TCP port free on 127.0.0.1 now (for a server the benchmark starts as a separate process). */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const { port } = srv.address() as { port: number };
  await new Promise((resolve) => srv.close(resolve));
  return port;
}
