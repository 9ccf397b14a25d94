import { pino, type Logger } from "pino";

/**
 * Secrets that must never reach a log line, wherever they appear in a logged object. The code
 * does not log them in the first place; this is the second line of defence.
 */
export const REDACT_PATHS = [
  "password", "*.password", "newPassword", "*.newPassword",
  "accessToken", "*.accessToken", "refreshToken", "*.refreshToken", "token", "*.token",
  "secret", "*.secret", "apiKey", "*.apiKey", "authorization", "*.authorization",
  "headers.authorization", "*.headers.authorization", "passwordHash", "*.passwordHash", "privateJwk", "*.privateJwk",
];

/** Structured JSON logs on stdout, one logger for the whole process; children add context. */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  const options = { level, base: { service: "tether" }, timestamp: pino.stdTimeFunctions.isoTime, redact: { paths: REDACT_PATHS, censor: "[redacted]" } };
  return destination ? pino(options, destination) : pino(options);
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
