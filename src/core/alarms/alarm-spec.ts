import { create } from "@bufbuild/protobuf";
import { durationFromMs, durationMs } from "@bufbuild/protobuf/wkt";
import { type AlarmSpec, AlarmSpecSchema, AlarmSeverity, AlarmSeveritySchema } from "../../../gen/tether/v1/alarm_pb.js";
import { EventTrigger_Comparison as Comparison } from "../../../gen/tether/v1/rule_pb.js";
import type { Violations } from "../errors.js";
import type { NotifyPolicy } from "./alarm-policy.js";

/** The reserved presence metric: 1 while the device is connected, 0 while it is not. Alarm rules only. */
export const ONLINE_METRIC = "online";

const DAY = 86_400_000;
const MAX_DESCRIPTION = 1024;

/** An alarm rule's AlarmSpec, validated and with its defaults applied. */
export interface AlarmRuleSpec extends NotifyPolicy {
  /** `AlarmSeverity` number. */
  severity: number;
  /** The value must get back past this to clear (hysteresis); the trigger's threshold by default. */
  clearThreshold: number;
  /** How long the clear condition must hold before the alarm clears. */
  clearForMs: number;
  description: string;
}

/** What the trigger of an alarm rule looks like to its validation. */
interface TriggerView {
  metric: string;
  comparison: Comparison;
  threshold: number;
}

/**
 * Validates `rule.alarm` against the rule's (already parsed) event trigger, adding bad fields to
 * `v` under `field` (`rule.alarm`). The clear threshold must lie on the safe side of the raise
 * threshold, or the alarm could clear and raise again on one value.
 */
export function parseAlarmSpec(a: AlarmSpec, trigger: TriggerView | undefined, field: string, v: Violations): AlarmRuleSpec | undefined {
  const before = v.list.length;
  if (a.severity === AlarmSeverity.UNSPECIFIED || !AlarmSeveritySchema.values.some((x) => x.number === a.severity)) {
    v.add(`${field}.severity`, "is required: CRITICAL, MAJOR, MINOR or WARNING");
  }
  if (a.description.length > MAX_DESCRIPTION) v.add(`${field}.description`, `must be at most ${MAX_DESCRIPTION} characters`);
  const clearForMs = a.clearFor ? durationMs(a.clearFor) : 0;
  if (!(clearForMs >= 0 && clearForMs <= DAY)) v.add(`${field}.clear_for`, "must be between 0 and 24h");
  let escalateAfterMs: number | undefined;
  if (a.escalateAfter) {
    escalateAfterMs = durationMs(a.escalateAfter);
    if (!(escalateAfterMs >= 60_000 && escalateAfterMs <= 30 * DAY)) v.add(`${field}.escalate_after`, "must be between 1m and 30 days");
  }
  const clearThreshold = a.clearThreshold ?? trigger?.threshold ?? 0;
  if (!Number.isFinite(clearThreshold)) v.add(`${field}.clear_threshold`, "must be a finite number");
  else if (trigger) {
    const t = trigger.threshold;
    const c = trigger.comparison;
    if (trigger.metric === ONLINE_METRIC) {
      if (clearThreshold !== t) v.add(`${field}.clear_threshold`, "must be unset for online: a reconnect clears the alarm");
      if (clearForMs > 0) v.add(`${field}.clear_for`, "must be unset for online: a reconnect clears the alarm");
    } else if ((c === Comparison.GT || c === Comparison.GE) && clearThreshold > t) {
      v.add(`${field}.clear_threshold`, `must be at most the threshold (${t}) for a rule raising at ${c === Comparison.GT ? ">" : ">="} ${t}`);
    } else if ((c === Comparison.LT || c === Comparison.LE) && clearThreshold < t) {
      v.add(`${field}.clear_threshold`, `must be at least the threshold (${t}) for a rule raising at ${c === Comparison.LT ? "<" : "<="} ${t}`);
    } else if ((c === Comparison.EQ || c === Comparison.NE) && clearThreshold !== t) {
      v.add(`${field}.clear_threshold`, "must be unset or equal to the threshold for EQ and NE");
    }
  }
  if (v.list.length > before) return undefined;
  return {
    severity: a.severity,
    clearThreshold,
    clearForMs,
    description: a.description,
    notifyOnRaise: a.notifyOnRaise ?? true,
    notifyOnClear: a.notifyOnClear ?? true,
    escalateAfterMs,
  };
}

/**
 * Refuses a presence condition that does not mean "offline": `online` alarms are raised by the
 * presence sweep, which watches devices that stopped being connected.
 */
export function checkOnlineCondition(comparison: Comparison, threshold: number, field: string, v: Violations, holds: (value: number) => boolean): void {
  if (!(holds(0) && !holds(1))) {
    v.add(
      field,
      `online is 1 while connected and 0 while not: an online alarm must hold for 0 and not for 1 (e.g. EQ 0), not ${Comparison[comparison]} ${threshold}`,
    );
  }
}

/** The public view of an alarm rule's spec. */
export function toAlarmSpecProto(a: AlarmRuleSpec): AlarmSpec {
  return create(AlarmSpecSchema, {
    severity: a.severity,
    clearThreshold: a.clearThreshold,
    clearFor: a.clearForMs > 0 ? durationFromMs(a.clearForMs) : undefined,
    description: a.description,
    notifyOnRaise: a.notifyOnRaise,
    notifyOnClear: a.notifyOnClear,
    escalateAfter: a.escalateAfterMs !== undefined ? durationFromMs(a.escalateAfterMs) : undefined,
  });
}
