import { Cron } from "croner";
import type { ScheduleTrigger } from "./rule-record.js";

/**
 * Schedule arithmetic: the occurrences of a cron expression in a time zone, or of a one-shot time,
 * clipped to a rule's [start, end) window.
 *
 * croner computes the occurrences and never runs a timer here (`paused: true`, no callback): the
 * scheduler loop drives time through the injectable Clock, so tests can move time over days and
 * daylight-saving changes. DST follows croner (Vixie cron):
 * - a fixed-time expression (one value each for seconds, minutes, hours, e.g. `0 30 2 * * *`) whose
 *   time does not exist on a spring-forward day fires when the clock has jumped (02:30 → 03:00
 *   CEST in Europe/Paris), and fires once, at the first pass, when its time occurs twice on a
 *   fall-back day (02:30 CEST, not again at 02:30 CET);
 * - an expression with a wildcard, step, list or range in those fields skips times that do not
 *   exist and fires on both passes of a repeated hour (an every-30-minutes rule keeps its rhythm).
 */
export interface ScheduleSpec {
  trigger: ScheduleTrigger;
  startTime?: Date;
  endTime?: Date;
}

const MAX_CACHED = 10_000;
const cache = new Map<string, Cron>();

/**
 * A parsed cron expression (cached: parsing costs ~50 µs, a lookup in a parsed one a few µs).
 * Throws croner's error for a bad expression or time zone.
 */
export function compileCron(expression: string, timeZone: string): Cron {
  const key = `${timeZone}\u0000${expression}`;
  let cron = cache.get(key);
  if (!cron) {
    cron = new Cron(expression, { timezone: timeZone, paused: true, mode: "auto" });
    // Invalid time zones surface only when a date is converted: force that now.
    cron.nextRun(new Date(0));
    if (cache.size >= MAX_CACHED) cache.delete(cache.keys().next().value!);
    cache.set(key, cron);
  }
  return cron;
}

const MAX_REMEMBERED = 4096;
const remembered = new Map<string, number | null>();

/**
 * croner's next run after `refMs` (whole seconds), remembered: a lookup costs croner ~40 µs,
 * and many rules share an expression and come due together ("0 30 7 * * 1-5" for a whole fleet).
 */
function cronNext(expression: string, timeZone: string, refMs: number): Date | undefined {
  const key = `${timeZone}\u0000${expression}\u0000${Math.floor(refMs / 1000)}`;
  let next = remembered.get(key);
  if (next === undefined) {
    next = compileCron(expression, timeZone).nextRun(new Date(refMs))?.getTime() ?? null;
    if (remembered.size >= MAX_REMEMBERED) remembered.clear();
    remembered.set(key, next);
  }
  return next === null ? undefined : new Date(next);
}

/** The canonical IANA name of a time zone (`europe/paris` → `Europe/Paris`), or undefined if unknown. */
export function canonicalTimeZone(timeZone: string): string | undefined {
  try {
    return new Intl.DateTimeFormat(undefined, { timeZone }).resolvedOptions().timeZone;
  } catch {
    return undefined;
  }
}

/** The first occurrence strictly after `after` inside the window, or undefined if there is none. */
export function nextOccurrence(spec: ScheduleSpec, after: Date): Date | undefined {
  const { trigger, startTime, endTime } = spec;
  let next: Date | undefined;
  if (trigger.kind === "oneShot") {
    const t = trigger.time;
    next = t.getTime() > after.getTime() && (!startTime || t.getTime() >= startTime.getTime()) ? t : undefined;
  } else {
    // croner drops milliseconds and answers strictly after the reference's second, so a start
    // time is inclusive when the reference is 1 ms before it.
    const ref = startTime && startTime.getTime() - 1 > after.getTime() ? startTime.getTime() - 1 : after.getTime();
    next = cronNext(trigger.expression, trigger.timeZone, ref);
  }
  if (next && endTime && next.getTime() >= endTime.getTime()) return undefined;
  return next;
}

/** Up to `n` occurrences strictly after `after`, in order. */
export function nextOccurrences(spec: ScheduleSpec, after: Date, n: number): Date[] {
  const out: Date[] = [];
  let cursor = after;
  while (out.length < n) {
    const next = nextOccurrence(spec, cursor);
    if (!next) break;
    out.push(next);
    cursor = next;
  }
  return out;
}

/**
 * The latest occurrence strictly before `before` (and at or after `notBefore`), for jumping over
 * a very long downtime without walking every occurrence. Undefined if there is none.
 */
export function latestOccurrenceBefore(spec: ScheduleSpec, before: Date, notBefore: Date): Date | undefined {
  const { trigger, startTime, endTime } = spec;
  let limit = before.getTime();
  if (endTime) limit = Math.min(limit, endTime.getTime());
  let prev: Date | undefined;
  if (trigger.kind === "oneShot") prev = trigger.time.getTime() < limit ? trigger.time : undefined;
  else prev = compileCron(trigger.expression, trigger.timeZone).previousRuns(1, new Date(limit - 1))[0];
  if (!prev || prev.getTime() >= limit || prev.getTime() < notBefore.getTime()) return undefined;
  if (startTime && prev.getTime() < startTime.getTime()) return undefined;
  return prev;
}
