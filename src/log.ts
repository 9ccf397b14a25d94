import { pino, type Logger } from "pino";

/** Structured JSON logs on stdout, one logger for the whole process; children add context. */
export function createLogger(level: string): Logger {
  return pino({ level, base: { service: "tether" }, timestamp: pino.stdTimeFunctions.isoTime });
}

export type { Logger };
