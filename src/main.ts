import { CliError } from "./cli/cli-error.js";
import { runCli } from "./cli/dispatch.js";

/**
 * Entry point of `npm start` and the `tether` binary: only dispatches (cli/dispatch.ts, which
 * imports each command's module when it runs); app.ts composes. Exit codes: 0 done, 1 the
 * operation failed, 2 the command line was wrong.
 */
runCli(process.argv.slice(2)).catch(async (err: unknown) => {
  const { describeError } = await import("./cli/format.js");
  console.error(describeError(err));
  process.exit(err instanceof CliError ? err.exitCode : 1);
});
