/** What a rule evaluated over observations needs to be indexed: its id, condition version and metric. */
export interface ObservedRule {
  id: string;
  /** When it changes, the rule starts over: its per-device state is dropped. */
  version: string;
  metric: string;
  /** The devices the rule targets now. */
  devices: ReadonlySet<string>;
  /** Observations outside [startTime, endTime) are ignored. */
  startTime?: Date;
  endTime?: Date;
}

/** Per-pair state every evaluator keeps: the latest observation time. */
export interface ObservedState {
  lastSeen?: number;
}

/**
 * The rule set of an observation evaluator, indexed by metric, with one state per (rule, device):
 * what the event-rule and alarm evaluators share. Bounded: past `maxPairs` the oldest pair is
 * forgotten, and starts over at its next observation.
 */
export function createRulePairs<R extends ObservedRule, S extends ObservedState>(maxPairs = 1_000_000) {
  let byMetric = new Map<string, R[]>();
  const versions = new Map<string, string>();
  const pairs = new Map<string, S>();
  const key = (ruleId: string, deviceId: string) => `${ruleId}\u0000${deviceId}`;

  function pair(ruleId: string, deviceId: string, create: () => S): S {
    const k = key(ruleId, deviceId);
    let st = pairs.get(k);
    if (!st) {
      if (pairs.size >= maxPairs) pairs.delete(pairs.keys().next().value!);
      st = create();
      pairs.set(k, st);
    }
    return st;
  }

  return {
    /** The rules observing `metric`. */
    rulesFor: (metric: string): readonly R[] | undefined => byMetric.get(metric),

    /** Replaces the rule set. The state of removed rules, and of rules whose version changed, is dropped. */
    setRules(rules: readonly R[]): void {
      const next = new Map<string, R[]>();
      const live = new Map<string, string>();
      for (const r of rules) {
        live.set(r.id, r.version);
        const list = next.get(r.metric) ?? [];
        list.push(r);
        next.set(r.metric, list);
      }
      const stale = new Set([...versions].filter(([id, version]) => live.get(id) !== version).map(([id]) => id));
      if (stale.size > 0) {
        for (const k of pairs.keys()) if (stale.has(k.slice(0, k.indexOf("\u0000")))) pairs.delete(k);
      }
      versions.clear();
      for (const [id, version] of live) versions.set(id, version);
      byMetric = next;
    },

    /** The pair's state, made empty by `create` if it has none. */
    pair,

    /**
     * The pair's state for an observation at `t` the rule takes: its device is targeted, `t` is in
     * the rule's window and not older than the pair's latest (older observations arrive out of
     * order and are ignored). Undefined otherwise; else `lastSeen` moves to `t`.
     */
    admit(r: R, deviceId: string, t: number, create: () => S): S | undefined {
      if (!r.devices.has(deviceId)) return undefined;
      if ((r.startTime && t < r.startTime.getTime()) || (r.endTime && t >= r.endTime.getTime())) return undefined;
      const st = pair(r.id, deviceId, create);
      if (st.lastSeen !== undefined && t < st.lastSeen) return undefined;
      st.lastSeen = t;
      return st;
    },

    /** The pair's state, if it has one. */
    peek: (ruleId: string, deviceId: string): S | undefined => pairs.get(key(ruleId, deviceId)),

    /** (rule, device) pairs with state. */
    size: () => pairs.size,
  };
}
