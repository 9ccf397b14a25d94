import { EventTrigger_Comparison as Comparison } from "../../../gen/tether/v1/rule_pb.js";
import { createRulePairs } from "./rule-pairs.js";

/** What the evaluator needs of an event rule. */
export interface EventRuleSpec {
  id: string;
  /** What decides the rule's firings (`conditionVersion`): when it changes, the rule starts over. */
  version: string;
  metric: string;
  comparison: Comparison;
  threshold: number;
  forMs: number;
  cooldownMs: number;
  /** The devices the rule targets now. */
  devices: ReadonlySet<string>;
  /** Observations outside [startTime, endTime) are ignored. */
  startTime?: Date;
  endTime?: Date;
}

/** A decision to fire `ruleId` for `deviceId`, at the observation that completed the condition. */
export interface EventFire {
  ruleId: string;
  version: string;
  deviceId: string;
  metric: string;
  value: number;
  time: Date;
  /** The firing before this one, if known: restored with `recordFire` if this one fails to commit. */
  previousFire?: Date;
}

interface PairState {
  /** Start of the current run of observations meeting the condition. */
  since?: number;
  /** The latest observation time: older observations arrive out of order and are ignored. */
  lastSeen?: number;
  lastFire?: number;
}

export type EventEvaluator = ReturnType<typeof createEventEvaluator>;

/** Whether `value <op> threshold` holds. */
export function compare(value: number, op: Comparison, threshold: number): boolean {
  switch (op) {
    case Comparison.LT:
      return value < threshold;
    case Comparison.LE:
      return value <= threshold;
    case Comparison.GT:
      return value > threshold;
    case Comparison.GE:
      return value >= threshold;
    case Comparison.EQ:
      return value === threshold;
    case Comparison.NE:
      return value !== threshold;
    default:
      return false;
  }
}

/**
 * Decides when event rules fire, from a stream of (device, metric, value, time) observations.
 * Pure and synchronous: no I/O and no clock; time is the observations' own time, so the same
 * samples always give the same firings.
 *
 * Per (rule, device): the condition must hold on every observation for at least `forMs` (the
 * first observation at or after that completes it), and two firings are at least `cooldownMs`
 * apart. While the condition keeps holding, the rule fires again once the cooldown has passed;
 * an observation that breaks the condition restarts the "for" period. The cooldown is also
 * enforced in the database (across replicas and restarts): `recordFire` feeds what the database
 * knows back in.
 */
export function createEventEvaluator(opts: { maxPairs?: number } = {}) {
  const table = createRulePairs<EventRuleSpec, PairState>(opts.maxPairs);
  const pair = (ruleId: string, deviceId: string) => table.pair(ruleId, deviceId, () => ({}));

  return {
    /** Replaces the rule set. State of removed rules, and of rules whose condition changed, is dropped. */
    setRules: table.setRules,

    /** One observation; returns the rules to fire now (the caller fires them). */
    observe(deviceId: string, metric: string, value: number, time: Date): EventFire[] {
      const rules = table.rulesFor(metric);
      if (!rules || !Number.isFinite(value)) return [];
      const t = time.getTime();
      const fires: EventFire[] = [];
      for (const r of rules) {
        const st = table.admit(r, deviceId, t, () => ({}));
        if (!st) continue;
        if (!compare(value, r.comparison, r.threshold)) {
          st.since = undefined;
          continue;
        }
        st.since ??= t;
        if (t - st.since < r.forMs) continue;
        if (st.lastFire !== undefined && t - st.lastFire < r.cooldownMs) continue;
        const previousFire = st.lastFire === undefined ? undefined : new Date(st.lastFire);
        st.lastFire = t;
        fires.push({ ruleId: r.id, version: r.version, deviceId, metric, value, time, previousFire });
      }
      return fires;
    },

    /**
     * Sets when the rule last fired for the device, as the database knows it (another replica or a
     * run before a restart fired it), or undefined after a firing failed to commit, so that the
     * next observation tries again. The cooldown counts from it.
     */
    recordFire(ruleId: string, deviceId: string, time: Date | undefined): void {
      pair(ruleId, deviceId).lastFire = time?.getTime();
    },

    /** (rule, device) pairs with state, for tests and metrics. */
    size: table.size,
  };
}
