import type { DeviceScope } from "../access/access.js";
import type { AlarmChange, AlarmRecord, AlarmState } from "../alarms/alarm-record.js";
import type { RuleRecord } from "../rules/rule-record.js";

/** One raise decision: the episode (rule, device, start) and the observation that completed it. */
export interface RaiseRequest {
  ruleId: string;
  /** `alarmVersion` of the rule the evaluator judged: a changed rule is not raised on a stale judgement. */
  version: string;
  deviceId: string;
  start: Date;
  time: Date;
  value: number;
  now: Date;
}

export type RaiseResult =
  | { outcome: "raised"; change: AlarmChange }
  /** The pair already has an ACTIVE alarm (this episode, raised elsewhere, or one another replica keyed differently). */
  | { outcome: "active"; start: Date }
  /** This episode was already raised and cleared (a late replica), or overlaps one that cleared. */
  | { outcome: "stale" }
  /** The rule is gone, paused, changed, outside its window, or no longer targets the device. */
  | { outcome: "inactive" };

export interface ClearRequest {
  ruleId: string;
  deviceId: string;
  time: Date;
  value: number;
  now: Date;
}

/** Filters of List/Count/Watch; every set field must match. */
export interface AlarmQuery {
  deviceId?: string;
  ruleId?: string;
  severity?: number;
  state?: AlarmState;
  acknowledged?: boolean;
}

/** An alarm rule and the devices it currently targets. */
export interface AlarmRuleView {
  rule: RuleRecord;
  deviceIds: string[];
}

/**
 * The port through which the core persists alarms (PostgreSQL/PGlite adapter in
 * `src/store/alarm-store.ts`). Every change that commits enqueues its notification (if the policy
 * says so) in the same transaction, and is returned so the caller can publish it to watchers.
 */
export interface AlarmRepository {
  /** INSERT ... ON CONFLICT DO NOTHING on the episode key: exactly once across replicas. */
  raise(req: RaiseRequest): Promise<RaiseResult>;
  /** Guarded UPDATE: the pair's ACTIVE alarm, if its episode started before the clearing observation. */
  clear(req: ClearRequest): Promise<AlarmChange | undefined>;
  /**
   * Presence alarms (`online`), by time: raises for targeted devices offline (their last_seen_time)
   * longer than the rule's for-duration, keyed by that last_seen_time; clears those whose device
   * reconnected (or was seen since). Idempotent: every replica may run it.
   */
  sweepPresence(now: Date): Promise<AlarmChange[]>;
  /** Escalates (once: a guarded UPDATE) ACTIVE unacknowledged alarms past their escalate_after. */
  escalate(now: Date, limit: number): Promise<AlarmChange[]>;
  /** Acknowledges if not yet acknowledged (and at `expectedRevision`, if given); undefined otherwise. */
  acknowledge(id: string, ack: { by: string; comment: string; now: Date; expectedRevision?: number }): Promise<AlarmChange | undefined>;
  get(id: string): Promise<AlarmRecord | undefined>;
  /** Newest first (raise time, then id); `before` continues a previous page. */
  list(q: { filter: AlarmQuery; scope: DeviceScope; before?: { raiseTime: Date; id: string }; limit: number }): Promise<AlarmRecord[]>;
  /** Counts per severity number. */
  count(q: { filter: AlarmQuery; scope: DeviceScope }): Promise<Map<number, number>>;
  /** Unpaused alarm rules on telemetry or reported state (not `online`), with their targets. */
  alarmRules(): Promise<AlarmRuleView[]>;
  /** The ACTIVE alarms of these rules: what a (re)started replica must know to clear them. */
  activeAlarms(ruleIds: string[]): Promise<Array<{ ruleId: string; deviceId: string; start: Date }>>;
}
