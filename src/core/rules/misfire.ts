import type { MisfirePolicy } from "./rule-record.js";
import { latestOccurrenceBefore, nextOccurrence, type ScheduleSpec } from "./schedule.js";

/** How late an occurrence may fire and still count as on time. */
export const DEFAULT_MISFIRE_GRACE_MS = 60_000;
/** Missed occurrences counted one by one before jumping straight to the latest (very long downtime). */
const MAX_COUNTED = 1000;

/** What to record for a due rule. */
export interface DueRun {
  /** `fire` creates the tasks; `skip` records the missed occurrences without firing. */
  action: "fire" | "skip";
  occurrence: Date;
  /** Missed occurrences not fired: skipped ones (skip), or the ones this run stands for (fire_once). */
  missed: number;
  /** The earliest missed occurrence, when `missed` > 0. */
  firstMissed?: Date;
  /** So many were missed that counting stopped: `missed` is a lower bound. */
  capped?: boolean;
}

/** The decision for one due rule: at most one run now, and when to look at the rule again. */
export interface DuePlan {
  run?: DueRun;
  /** The next occurrence to wait for; undefined when the rule will not fire again. */
  next?: Date;
}

/**
 * Decides what a scheduler does with a rule whose `due` occurrence (its next_fire_time) has come.
 * Pure: it reads only its arguments, so tests drive it with any `now`.
 *
 * - Late by at most `graceMs`: fire `due`; next is the occurrence after it (which may also be
 *   due already: the scheduler then fires it in its next pass, so no on-time occurrence is lost).
 * - Later than that (Tether was down): the occurrences more than `graceMs` old are missed.
 *   `skip` records one SKIPPED run for all of them (at the latest) and fires none;
 *   `fire_once` fires one run for the latest missed occurrence. Either way, next is the first
 *   occurrence after the latest missed one, which may be on time and fire right after.
 */
export function planDue(spec: ScheduleSpec, policy: MisfirePolicy, due: Date, now: Date, graceMs = DEFAULT_MISFIRE_GRACE_MS): DuePlan {
  if (due.getTime() > now.getTime()) return { next: due };
  if (now.getTime() - due.getTime() <= graceMs) return { run: { action: "fire", occurrence: due, missed: 0 }, next: nextOccurrence(spec, due) };

  const cutoff = now.getTime() - graceMs; // occurrences before this are missed
  let latest = due;
  let count = 1;
  let following = nextOccurrence(spec, due);
  let capped = false;
  while (following && following.getTime() < cutoff) {
    if (count >= MAX_COUNTED) {
      // Days of a per-second schedule: stop counting, jump to the latest missed occurrence.
      latest = latestOccurrenceBefore(spec, new Date(cutoff), following) ?? following;
      following = nextOccurrence(spec, latest);
      capped = true;
      break;
    }
    latest = following;
    count++;
    following = nextOccurrence(spec, latest);
  }
  const run: DueRun =
    policy === "skip"
      ? { action: "skip", occurrence: latest, missed: count, firstMissed: due }
      : { action: "fire", occurrence: latest, missed: count - 1, firstMissed: count > 1 ? due : undefined };
  if (capped) run.capped = true;
  return { run, next: following };
}

/** Why a run is what it is, when downtime was involved; "" for an on-time firing. */
export function misfireReason(run: DueRun, fireTime: Date, graceMs = DEFAULT_MISFIRE_GRACE_MS): string {
  const lateMs = fireTime.getTime() - run.occurrence.getTime();
  if (run.missed === 0 && lateMs <= graceMs) return "";
  const n = run.capped ? `${run.missed}+` : String(run.missed);
  const s = run.missed === 1 ? "" : "s";
  if (run.action === "skip") {
    return `skipped ${n} occurrence${s} missed during downtime, ${(run.firstMissed ?? run.occurrence).toISOString()} to ${run.occurrence.toISOString()} (misfire policy SKIP)`;
  }
  const late = `fired ${Math.round(lateMs / 1000)} s late after downtime`;
  return run.missed === 0
    ? `${late} (misfire policy FIRE_ONCE)`
    : `${late}, once for this and ${n} earlier missed occurrence${s} since ${run.firstMissed!.toISOString()} (misfire policy FIRE_ONCE)`;
}
