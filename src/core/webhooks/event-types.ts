import { Violations } from "../errors.js";

/**
 * The fleet event types (`tether.v1.Event.type`). Emitted ones come from the database triggers of
 * migration 1732300000019 (tasks, devices, jobs). Reserved ones are accepted in subscriptions now,
 * so a subscriber can sign up before the part that emits them lands: connectivity (presence),
 * alarms and firmware insert their events into `webhook_events` in their own transactions
 * (`type`, `device_id`, `time`, `resource`) and add a payload case in `event-payload.ts`.
 */
export const EMITTED_EVENT_TYPES = ["task.state_changed", "device.created", "device.updated", "device.deleted", "job.progress"] as const;
export const RESERVED_EVENT_TYPES = ["device.connectivity", "alarm.raised", "alarm.cleared", "alarm.acknowledged", "firmware.update_result"] as const;
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
