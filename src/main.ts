import { CliError } from "./cli/cli-error.js";
import { runCli } from "./cli/dispatch.js";
import { describeError } from "./cli/format.js";

/**
 * Entry point of `npm start` and the `tether` binary: only dispatches (cli/dispatch.ts); app.ts
 * composes. Exit codes: 0 done, 1 the operation failed, 2 the command line was wrong.
 */
runCli(process.argv.slice(2)).catch((err: unknown) => {
  console.error(describeError(err));
  process.exit(err instanceof CliError ? err.exitCode : 1);
});
