import type { Logger } from "../log.js";

/**
 * postgres.js 3.4.9 can throw from a `setImmediate` after a connection closed under it
 * (`TypeError: Cannot read properties of null (reading 'write')` in `nextWrite`, connection.js):
 * upstream porsager/postgres#1154 / #1208, fixes proposed in #1168 / #1209, unreleased. Thrown
 * from a timer, it escapes every await and kills the process; the fault suite hit it on every
 * PostgreSQL outage under load (tests/faults/postgres-outage.test.ts). `patches/postgres+3.4.9.patch`
 * (applied by patch-package on install) fixes the cause; this guard stays for an install that
 * skipped scripts, where it keeps the process up.
 */
export function isPostgresClosedSocketWrite(err: unknown): boolean {
  return (
    err instanceof TypeError &&
    /reading 'write'/.test(err.message) &&
    /postgres[\\/]src[\\/]connection\.js/.test(err.stack ?? "") &&
    /nextWrite/.test(err.stack ?? "")
  );
}

/**
 * Installs the process's uncaught-exception handler: the driver bug above is logged and counted
 * and the process lives on; anything else is logged and ends the process with code 1, as Node's
 * default would. Only for `tether serve` (the process owner), never inside a library or test.
 */
export function installUncaughtGuard(log: Logger, onSwallowed: () => void = () => {}): void {
  process.on("uncaughtException", (err, origin) => {
    if (isPostgresClosedSocketWrite(err)) {
      onSwallowed();
      log.warn({ err: err.message }, "postgres driver wrote to a closed connection (upstream bug porsager/postgres#1208); ignored, its queries already failed");
      return;
    }
    log.fatal({ err, origin }, "uncaught exception");
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
