import type { AlarmChange } from "./alarm-record.js";

/** What an alarm rule notifies (`AlarmSpec`'s policy, resolved). */
export interface NotifyPolicy {
  notifyOnRaise: boolean;
  notifyOnClear: boolean;
  escalateAfterMs?: number;
}

/**
 * Whether a committed alarm change is notified. A raise follows the rule's policy at that moment;
 * a clear and an escalation follow the policy the alarm was raised with (copied onto it), so a
 * rule edited mid-episode does not change what its open alarms promised. An acknowledgement is
 * always an event: it is what a team needs to see to stop chasing. Nothing else ever notifies,
 * so an active alarm is never repeated: one raise, one clear, at most one escalation.
 */
export function notifies(change: AlarmChange, rule?: Pick<NotifyPolicy, "notifyOnRaise">): boolean {
  switch (change.type) {
    case "alarm.raised":
      return rule?.notifyOnRaise ?? true;
    case "alarm.cleared":
      return change.alarm.notifyOnClear;
    case "alarm.escalated":
      return change.alarm.escalateAfterMs !== undefined;
    case "alarm.acknowledged":
      return true;
  }
}
