import type { DescMessage, JsonValue, Message } from "@bufbuild/protobuf";
import type { Device } from "../../../gen/tether/v1/device_pb.js";
import type { Clock } from "../clock.js";
import { parseDeviceName } from "../devices/device-name.js";
import type { CoreLogger } from "../log.js";
import { productByCase } from "../products/index.js";
import type { TaskRecord } from "../tasks/task-record.js";
import { createEventEvaluator, type EventFire, type EventRuleSpec } from "./event-evaluator.js";
import { type MetricValue, reportedJsonMetrics, reportedMetrics } from "./reported-metrics.js";
import { conditionVersion } from "./rule-record.js";
import type { RuleRepository } from "../ports/rule-repository.js";

export interface EventRulesDeps {
  rules: RuleRepository;
  clock: Clock;
  log: CoreLogger;
  /** How often the rule set (and selector membership) is re-read, ms. @default 5000 */
  refreshMs?: number;
  /** Observations older than this (a device uploading a backlog) never fire a rule, ms. @default 15 min */
  maxObservationAgeMs?: number;
  /** Called after a firing committed, with its tasks (QUEUED): announce and dispatch them. */
  onTasksCreated?: (tasks: TaskRecord[]) => void;
}

export type EventRules = ReturnType<typeof createEventRules>;

/**
 * Event rules in one process: feeds observations (telemetry samples, reported state) to the pure
 * evaluator and fires what it decides through the repository, which records each firing exactly
 * once and enforces the cooldown in the database, so several replicas seeing the same device
 * never fire twice within a cooldown.
 *
 * The "for" period is tracked in memory per replica: observations of one device should reach one
 * replica (they do with one MQTT subscription per replica; with shared subscriptions a device's
 * stream may split, and a "for" condition then needs its observations on one replica).
 */
export function createEventRules(d: EventRulesDeps) {
  const { rules, clock, log } = d;
  const evaluator = createEventEvaluator();
  const refreshMs = d.refreshMs ?? 5000;
  const maxAgeMs = d.maxObservationAgeMs ?? 15 * 60_000;
  const inflight = new Set<Promise<void>>();
  let timer: NodeJS.Timeout | undefined;
  let refreshing: Promise<void> | undefined;

  async function load(): Promise<void> {
    const views = await rules.eventRules();
    const specs: EventRuleSpec[] = [];
    for (const { rule, deviceIds } of views) {
      if (rule.trigger.kind !== "event") continue;
      const t = rule.trigger;
      specs.push({
        id: rule.id,
        version: conditionVersion(rule),
        metric: t.metric,
        comparison: t.comparison,
        threshold: t.threshold,
        forMs: t.forMs,
        cooldownMs: t.cooldownMs,
        devices: new Set(deviceIds),
        startTime: rule.startTime,
        endTime: rule.endTime,
      });
    }
    evaluator.setRules(specs);
  }

  async function fire(f: EventFire): Promise<void> {
    try {
      const r = await rules.fireEvent({ ruleId: f.ruleId, version: f.version, deviceId: f.deviceId, occurrence: f.time, value: f.value, now: clock.now() });
      if (r.outcome === "fired") {
        log.info({ ruleId: f.ruleId, deviceId: f.deviceId, metric: f.metric, value: f.value, state: r.run.state }, "event rule fired");
        if (r.tasks.length > 0) d.onTasksCreated?.(r.tasks);
      } else if (r.outcome === "cooldown") {
        evaluator.recordFire(f.ruleId, f.deviceId, r.lastFireTime);
      } else if (r.outcome === "inactive") {
        // The rule changed, was paused or no longer targets the device: it did not fire.
        evaluator.recordFire(f.ruleId, f.deviceId, f.previousFire);
        void refresh();
      }
    } catch (err) {
      evaluator.recordFire(f.ruleId, f.deviceId, f.previousFire);
      log.error({ err, ruleId: f.ruleId, deviceId: f.deviceId }, "firing an event rule failed; the next observation tries again");
    }
  }

  function observeMany(deviceId: string, values: MetricValue[], time: Date): void {
    if (clock.now().getTime() - time.getTime() > maxAgeMs) return;
    for (const { metric, value } of values) {
      for (const f of evaluator.observe(deviceId, metric, value, time)) {
        const p = fire(f).finally(() => inflight.delete(p));
        inflight.add(p);
      }
    }
  }

  function refresh(): Promise<void> {
    return (refreshing ??= load()
      .catch((err: unknown) => log.error({ err }, "loading event rules failed"))
      .finally(() => (refreshing = undefined)));
  }

  return {
    /** One observation of a metric (a telemetry sample). Fires asynchronously. */
    observe(deviceId: string, metric: string, value: number, time: Date = clock.now()): void {
      observeMany(deviceId, [{ metric, value }], time);
    },

    /**
     * A reported state as protobuf JSON: each numeric field becomes an observation named by its
     * field path (`water_level_percent`). Pass the product's reported-state schema so that zero
     * values, which protobuf JSON omits, are observed too.
     */
    observeReportedState(deviceId: string, reportedJson: JsonValue, schema?: DescMessage, time: Date = clock.now()): void {
      observeMany(deviceId, reportedJsonMetrics(reportedJson, schema), time);
    },

    /** A device as published on the device feed: observes its reported state, if any. */
    observeDevice(device: Device, time: Date = clock.now()): void {
      if (device.kind.case === undefined) return;
      const reported = (device.kind.value as { reported?: Message }).reported;
      if (!reported) return;
      const product = productByCase(device.kind.case);
      observeMany(parseDeviceName(device.name), reportedMetrics(product.reportedSchema, reported), time);
    },

    /** Re-reads the rules now (after a local create/update/delete; other replicas' changes arrive within `refreshMs`). */
    refresh,

    /** Loads the rules, then keeps them fresh. */
    async start(): Promise<void> {
      await refresh();
      timer ??= setInterval(() => void refresh(), refreshMs);
      timer.unref?.();
    },

    /** Stops refreshing and waits for firings in flight. */
    async stop(): Promise<void> {
      if (timer) clearInterval(timer);
      timer = undefined;
      await refreshing;
      await Promise.all([...inflight]);
    },

    /** Resolves when every firing started so far has finished (tests). */
    async idle(): Promise<void> {
      while (inflight.size > 0) await Promise.all([...inflight]);
    },
  };
}
