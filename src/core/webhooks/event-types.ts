import { Violations } from "../errors.js";

/**
 * The fleet event types (`tether.v1.Event.type`). Emitted ones come from database triggers:
 * migration 1732300000019 (tasks, devices, jobs) and 1732300000022 (connectivity events, alarm
 * notifications). Reserved ones are accepted in subscriptions now, so a subscriber can sign up
 * before the part that emits them lands: firmware will insert its events into `webhook_events` in
 * its own transactions (`type`, `device_id`, `time`, `resource`) and add a payload case in
 * `buildEvents` (src/store/webhook-outbox-sql.ts).
 */
export const EMITTED_EVENT_TYPES = [
  "task.state_changed",
  "device.created",
  "device.updated",
  "device.deleted",
  "job.progress",
  "device.connectivity",
  "alarm.raised",
  "alarm.cleared",
  "alarm.acknowledged",
  "alarm.escalated",
] as const;
export const RESERVED_EVENT_TYPES = ["firmware.update_result"] as const;
export const EVENT_TYPES: readonly string[] = [...EMITTED_EVENT_TYPES, ...RESERVED_EVENT_TYPES];

/** Checks a subscription's types: at least one, each known, no repeats (the unknown one is named). */
export function parseEventTypes(types: readonly string[], field: string, v: Violations): string[] {
  if (types.length === 0) v.add(field, `at least one event type is required: ${EVENT_TYPES.join(", ")}`);
  if (types.length > EVENT_TYPES.length) v.add(field, `at most ${EVENT_TYPES.length} event types`);
  const seen = new Set<string>();
  types.forEach((t, i) => {
    if (!EVENT_TYPES.includes(t)) v.add(`${field}[${i}]`, `unknown event type "${t.slice(0, 80)}"; known types: ${EVENT_TYPES.join(", ")}`);
    else if (seen.has(t)) v.add(`${field}[${i}]`, `"${t}" is listed twice`);
    seen.add(t);
  });
  return [...seen];
}

export function requireEventTypes(types: readonly string[], field: string): string[] {
  const v = new Violations();
  const out = parseEventTypes(types, field, v);
  v.throwIfAny();
  return out;
}
