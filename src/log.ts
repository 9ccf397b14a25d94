import { pino, type Logger } from "pino";
import { formatLogLine, type LogFormatSetting, resolveLogFormat, wantsColour } from "./log-pretty.js";

/**
 * Secrets that must never reach a log line, wherever they appear in a logged object. The code
 * does not log them in the first place; this is the second line of defence.
 */
export const REDACT_PATHS = [
  "password",
  "*.password",
  "newPassword",
  "*.newPassword",
  "accessToken",
  "*.accessToken",
  "refreshToken",
  "*.refreshToken",
  "token",
  "*.token",
  "secret",
  "*.secret",
  "apiKey",
  "*.apiKey",
  "authorization",
  "*.authorization",
  "headers.authorization",
  "*.headers.authorization",
  "passwordHash",
  "*.passwordHash",
  "privateJwk",
  "*.privateJwk",
];

/**
 * One logger for the whole process, on stdout (or `destination`); children add context.
 * Structured JSON lines, or a readable coloured line per entry when the format resolves to
 * `pretty` (`LOG_FORMAT`, default `auto`: pretty on a terminal, JSON everywhere else).
 * Redaction happens before either rendering.
 */
export function createLogger(level: string, destination?: NodeJS.WritableStream, format: LogFormatSetting = logFormatFromEnv()): Logger {
  const options = { level, base: { service: "tether" }, timestamp: pino.stdTimeFunctions.isoTime, redact: { paths: REDACT_PATHS, censor: "[redacted]" } };
  const out = (destination ?? process.stdout) as NodeJS.WritableStream & { isTTY?: boolean };
  if (resolveLogFormat(format, out) === "json") return destination ? pino(options, destination) : pino(options);
  const colour = wantsColour(out);
  // pino hands a destination each serialized line; re-render it (synchronously, in order).
  return pino(options, { write: (line: string) => void out.write(formatLogLine(line, colour)) });
}

/**
 * `LOG_FORMAT` for the commands that log without a loaded config (`simulate`, `migrate`); an
 * unknown value falls back to `auto` here, `loadConfig` is where it is refused.
 */
function logFormatFromEnv(env: NodeJS.ProcessEnv = process.env): LogFormatSetting {
  const v = env.LOG_FORMAT;
  return v === "json" || v === "pretty" ? v : "auto";
}

/**
 * A URL fit for a log line or an error message: the password replaced by `***` (a username alone
 * is kept, it helps to tell connections apart). Unparseable input is not echoed at all.
 */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(invalid url)";
  }
}

export type { Logger };
