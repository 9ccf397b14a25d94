import type { EventTrigger_Comparison as Comparison } from "../../../gen/tether/v1/rule_pb.js";
import { createRulePairs } from "../rules/rule-pairs.js";
import { compare } from "../rules/event-evaluator.js";

/** What the evaluator needs of an alarm rule on a telemetry or reported-state metric. */
export interface AlarmRuleCondition {
  id: string;
  /** Changes when what decides raising and clearing changes: the rule's state starts over. */
  version: string;
  metric: string;
  comparison: Comparison;
  threshold: number;
  /** Clears once `value <op> clearThreshold` no longer holds (hysteresis). */
  clearThreshold: number;
  forMs: number;
  clearForMs: number;
  devices: ReadonlySet<string>;
  startTime?: Date;
  endTime?: Date;
}

/** A decision about one (rule, device) episode. */
export interface AlarmDecision {
  kind: "raise" | "clear";
  ruleId: string;
  version: string;
  deviceId: string;
  value: number;
  /** The observation that completed the raise or clear condition. */
  time: Date;
  /** The episode's start: the first observation of the run that raised it (the exactly-once key). */
  start: Date;
}

interface PairState {
  lastSeen?: number;
  /** Start of the current run of observations meeting the raise condition (while not active). */
  since?: number;
  /** The active episode's start, as this replica knows it. */
  active?: number;
  /** Start of the current run meeting the clear condition (while active). */
  clearSince?: number;
}

export type AlarmEvaluator = ReturnType<typeof createAlarmEvaluator>;

/**
 * Decides when alarms raise and clear, from (device, metric, value, time) observations. Pure and
 * synchronous, over observation time only: replicas seeing the same stream make the same
 * decisions with the same episode starts, which is what makes the database's unique key on
 * (rule, device, start) an exactly-once claim.
 *
 * Per (rule, device): an episode starts at the first observation meeting `value <op> threshold`
 * and raises once the condition has held on every observation for `forMs`; it clears at the
 * first observation at least `clearForMs` into a run of observations on which `value <op>
 * clearThreshold` no longer holds. Observations in between change nothing: no repeat.
 */
export function createAlarmEvaluator(opts: { maxPairs?: number } = {}) {
  const table = createRulePairs<AlarmRuleCondition, PairState>(opts.maxPairs);
  const pair = (ruleId: string, deviceId: string) => table.pair(ruleId, deviceId, () => ({}));

  return {
    /** Replaces the rule set; state of removed or changed rules is dropped. */
    setRules: table.setRules,

    /** One observation; returns what to raise or clear now. */
    observe(deviceId: string, metric: string, value: number, time: Date): AlarmDecision[] {
      const rules = table.rulesFor(metric);
      if (!rules || !Number.isFinite(value)) return [];
      const t = time.getTime();
      const out: AlarmDecision[] = [];
      for (const r of rules) {
        const st = table.admit(r, deviceId, t, () => ({}));
        if (!st) continue;
        const base = { ruleId: r.id, version: r.version, deviceId, value, time };
        if (st.active === undefined) {
          if (!compare(value, r.comparison, r.threshold)) {
            st.since = undefined;
            continue;
          }
          st.since ??= t;
          if (t - st.since < r.forMs) continue;
          out.push({ kind: "raise", ...base, start: new Date(st.since) });
          st.active = st.since;
          st.since = undefined;
          st.clearSince = undefined;
        } else {
          if (compare(value, r.comparison, r.clearThreshold)) {
            st.clearSince = undefined;
            continue;
          }
          st.clearSince ??= t;
          if (t - st.clearSince < r.clearForMs) continue;
          out.push({ kind: "clear", ...base, start: new Date(st.active) });
          st.active = undefined;
          st.clearSince = undefined;
        }
      }
      return out;
    },

    /**
     * What the database says of a pair: an active episode (raised by another replica or before a
     * restart) or none (a raise refused as stale). `onlyIfUnknown` leaves pairs this evaluator has
     * observed itself alone: its own view of the stream is at least as fresh as a periodic read.
     */
    setActive(ruleId: string, deviceId: string, start: Date | undefined, onlyIfUnknown = false): void {
      if (onlyIfUnknown && table.peek(ruleId, deviceId)) return;
      const st = pair(ruleId, deviceId);
      st.active = start?.getTime();
      st.since = undefined;
      st.clearSince = undefined;
    },

    /**
     * Corrects a pair after the database answered a decision: its active episode becomes `next`,
     * but only if nothing moved since (it is still `expected`, the state the decision left).
     */
    correct(ruleId: string, deviceId: string, expected: Date | undefined, next: Date | undefined): void {
      const st = table.peek(ruleId, deviceId);
      if (!st || st.active !== expected?.getTime()) return;
      st.active = next?.getTime();
      st.since = undefined;
      st.clearSince = undefined;
    },

    /** (rule, device) pairs with state, for tests and metrics. */
    size: table.size,
  };
}
