/**
 * A failure the CLI reports as it is: the message is already the whole `error: …` text, and
 * `exitCode` tells a script what went wrong (1: the operation failed; 2: the command line was wrong).
 */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: 1 | 2 = 1,
  ) {
    super(message);
  }
}

/** One usage mistake: the `error:` line, then where to read more; exit code 2. */
export function usageError(message: string, helpOf: string): CliError {
  return new CliError(`error: ${message}\nrun ${helpOf} --help`, 2);
}

/** The reason part of a file error: Node's errno text without its code and syscall (`no such file or directory`). */
export function fileErrorReason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e?.code === "EEXIST") return "already exists";
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/^[A-Z0-9]+: /, "").replace(/, [a-z]+ '[^']*'(?: -> '[^']*')?$/, "");
}

/** One `error: <what>: <path>: <reason>` line for a file the CLI could not read or write. */
export class FileError extends CliError {
  constructor(what: string, file: string, cause: unknown, hint = "") {
    super(`error: ${what}: ${file}: ${fileErrorReason(cause)}${hint}`);
  }
}
