/**
 * A one-line, human-readable rendering of pino's JSON lines for a terminal:
 * `19:57:04.123 INFO  tether ready api=https://127.0.0.1:8443 broker=embedded`.
 *
 * Why our own and not pino-pretty: it is not a dependency, and the few lines here cover what an
 * operator reads in a terminal (time, level, message, fields). Machines get the JSON unchanged
 * (see `createLogger`), so nothing downstream depends on this format.
 */

/** pino's numeric levels, with the colour each is shown in (ANSI SGR codes). */
const LEVELS: Record<number, { name: string; colour: string }> = {
  10: { name: "TRACE", colour: "90" },
  20: { name: "DEBUG", colour: "36" },
  30: { name: "INFO", colour: "32" },
  40: { name: "WARN", colour: "33" },
  50: { name: "ERROR", colour: "31" },
  60: { name: "FATAL", colour: "1;31" },
};

/** Fields the line already shows in its own place, or that say nothing in a terminal. */
const SHOWN_APART = new Set(["time", "level", "msg", "service", "pid", "hostname", "v"]);

/** A value fit to follow `key=`: bare when that is unambiguous, JSON otherwise. */
function formatValue(value: unknown): string {
  if (typeof value === "string") return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  if (value === null || typeof value !== "object") return String(value);
  return JSON.stringify(value);
}

/**
 * Renders one JSON log line; a line that is not JSON (it should not happen) is passed through.
 * An error's stack, when there is one, follows on indented lines: it is what one reads it for.
 */
export function formatLogLine(line: string, colour: boolean): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line.endsWith("\n") ? line : `${line}\n`;
  }
  const paint = (code: string, text: string) => (colour ? `\x1b[${code}m${text}\x1b[0m` : text);
  const level = LEVELS[Number(entry.level)] ?? { name: String(entry.level ?? "?").toUpperCase(), colour: "0" };
  const time =
    typeof entry.time === "string"
      ? (entry.time.match(/T(\d\d:\d\d:\d\d(?:\.\d+)?)/)?.[1] ?? entry.time)
      : typeof entry.time === "number"
        ? new Date(entry.time).toISOString().slice(11, 23)
        : "";
  let stack: string | undefined;
  const fields: string[] = [];
  for (const [key, value] of Object.entries(entry)) {
    if (SHOWN_APART.has(key) || value === undefined) continue;
    // pino's err serializer: show the message in place, the stack below.
    if (
      value !== null &&
      typeof value === "object" &&
      typeof (value as { message?: unknown }).message === "string" &&
      typeof (value as { stack?: unknown }).stack === "string"
    ) {
      fields.push(`${paint("2", `${key}=`)}${formatValue((value as { message: string }).message)}`);
      stack = (value as { stack: string }).stack;
      continue;
    }
    fields.push(`${paint("2", `${key}=`)}${formatValue(value)}`);
  }
  const head = [paint("2", time), paint(level.colour, level.name.padEnd(5)), typeof entry.msg === "string" ? entry.msg : ""].filter((s) => s !== "").join(" ");
  const body = fields.length ? `${head} ${fields.join(" ")}` : head;
  const tail = stack
    ? `\n${stack
        .split("\n")
        .map((l) => `    ${paint("2", l.trim())}`)
        .join("\n")}`
    : "";
  return `${body}${tail}\n`;
}

/** How log lines are written: `json` for machines, `pretty` for a person at a terminal. */
export type LogFormat = "json" | "pretty";
/** `LOG_FORMAT`'s values; `auto` is pretty on a terminal, JSON otherwise. */
export type LogFormatSetting = LogFormat | "auto";

/**
 * The format a setting means for an output: `auto` is pretty only when the output is a terminal,
 * so a pipe, a file, journald or a container log collector always gets JSON.
 */
export function resolveLogFormat(setting: LogFormatSetting, output: { isTTY?: boolean }): LogFormat {
  return setting === "auto" ? (output.isTTY === true ? "pretty" : "json") : setting;
}

/** Colour only on a terminal, and never when `NO_COLOR` is set (https://no-color.org). */
export function wantsColour(output: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  return output.isTTY === true && !env.NO_COLOR;
}
