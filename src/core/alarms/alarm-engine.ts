import type { DescMessage, JsonValue, Message } from "@bufbuild/protobuf";
import type { Device } from "../../../gen/tether/v1/device_pb.js";
import type { Clock } from "../clock.js";
import { parseDeviceName } from "../devices/device-name.js";
import { createKeyedQueue } from "../keyed-queue.js";
import type { CoreLogger } from "../log.js";
import type { AlarmRepository } from "../ports/alarm-repository.js";
import { productByCase } from "../products/index.js";
import { type MetricValue, reportedJsonMetrics, reportedMetrics } from "../rules/reported-metrics.js";
import { createTickLoop } from "../tick-loop.js";
import { type AlarmDecision, type AlarmRuleCondition, createAlarmEvaluator } from "./alarm-evaluator.js";
import { type AlarmChange, alarmVersion } from "./alarm-record.js";

export interface AlarmEngineDeps {
  alarms: AlarmRepository;
  clock: Clock;
  log: CoreLogger;
  /** Called with every committed change (raise, clear, escalation): publish it to watchers. */
  onChanges?: (changes: AlarmChange[]) => void;
  /** How often alarm rules (and selector membership) are re-read, ms. @default 5000 */
  refreshMs?: number;
  /** How often the presence sweep and the escalation timer run, ms. @default 10000 */
  sweepMs?: number;
  /** Observations older than this (a device uploading a backlog) never raise or clear, ms. @default 15 min */
  maxObservationAgeMs?: number;
}

export type AlarmEngine = ReturnType<typeof createAlarmEngine>;

/**
 * Alarms in one process. Observations (telemetry samples, reported states) go to the pure
 * evaluator; its raise and clear decisions go to the repository, one at a time per (rule, device)
 * so they reach the database in the order they were decided. Every replica runs one over the
 * same stream: the database's episode key makes each raise happen once. Presence alarms
 * (`online`) and escalations are driven by time instead: a periodic sweep, idempotent across
 * replicas, woken early when a device reconnects.
 */
export function createAlarmEngine(d: AlarmEngineDeps) {
  const { alarms, clock, log } = d;
  const evaluator = createAlarmEvaluator();
  const refreshMs = d.refreshMs ?? 5000;
  const sweepMs = d.sweepMs ?? 10_000;
  const maxAgeMs = d.maxObservationAgeMs ?? 15 * 60_000;
  const queue = createKeyedQueue((err, key) => log.error({ err, key }, "an alarm decision failed"));
  let timer: NodeJS.Timeout | undefined;
  let refreshing: Promise<void> | undefined;
  const publish = (list: AlarmChange[]) => {
    if (list.length > 0) d.onChanges?.(list);
  };

  async function load(): Promise<void> {
    const views = await alarms.alarmRules();
    const conditions: AlarmRuleCondition[] = [];
    for (const { rule, deviceIds } of views) {
      if (rule.trigger.kind !== "event" || !rule.alarm) continue;
      const t = rule.trigger;
      conditions.push({
        id: rule.id,
        version: alarmVersion(rule),
        metric: t.metric,
        comparison: t.comparison,
        threshold: t.threshold,
        clearThreshold: rule.alarm.clearThreshold,
        forMs: t.forMs,
        clearForMs: rule.alarm.clearForMs,
        devices: new Set(deviceIds),
        startTime: rule.startTime,
        endTime: rule.endTime,
      });
    }
    evaluator.setRules(conditions);
    // Alarms raised before this replica (re)started, or by a replica seeing other observations.
    for (const a of await alarms.activeAlarms(conditions.map((c) => c.id))) evaluator.setActive(a.ruleId, a.deviceId, a.start, true);
  }

  async function act(x: AlarmDecision): Promise<void> {
    const now = clock.now();
    if (x.kind === "raise") {
      try {
        const r = await alarms.raise({ ruleId: x.ruleId, version: x.version, deviceId: x.deviceId, start: x.start, time: x.time, value: x.value, now });
        if (r.outcome === "raised") {
          log.info({ ruleId: x.ruleId, deviceId: x.deviceId, value: x.value }, "alarm raised");
          publish([r.change]);
        } else if (r.outcome === "active") evaluator.correct(x.ruleId, x.deviceId, x.start, r.start);
        else {
          evaluator.correct(x.ruleId, x.deviceId, x.start, undefined);
          if (r.outcome === "inactive") void refresh();
        }
      } catch (err) {
        // The next observation meeting the condition tries again.
        evaluator.correct(x.ruleId, x.deviceId, x.start, undefined);
        throw err;
      }
      return;
    }
    try {
      const change = await alarms.clear({ ruleId: x.ruleId, deviceId: x.deviceId, time: x.time, value: x.value, now });
      if (change) {
        log.info({ ruleId: x.ruleId, deviceId: x.deviceId, value: x.value }, "alarm cleared");
        publish([change]);
      }
    } catch (err) {
      evaluator.correct(x.ruleId, x.deviceId, undefined, x.start);
      throw err;
    }
  }

  function observeMany(deviceId: string, values: MetricValue[], time: Date): void {
    if (clock.now().getTime() - time.getTime() > maxAgeMs) return;
    for (const { metric, value } of values) {
      for (const x of evaluator.observe(deviceId, metric, value, time)) void queue.push(`${x.ruleId}\u0000${x.deviceId}`, () => act(x));
    }
  }

  /** Presence and escalation: time-driven, so every replica runs it; the SQL makes each change once. */
  async function sweep(): Promise<number> {
    const now = clock.now();
    publish(await alarms.sweepPresence(now));
    publish(await alarms.escalate(now, 1000));
    return sweepMs;
  }
  const wentOffline = new Set<string>();
  const sweeper = createTickLoop(sweep, { defaultDelayMs: sweepMs, onError: (err) => log.error({ err }, "the alarm sweep failed") });

  function refresh(): Promise<void> {
    return (refreshing ??= load()
      .catch((err: unknown) => log.error({ err }, "loading alarm rules failed"))
      .finally(() => (refreshing = undefined)));
  }

  return {
    /** One observation of a metric (a telemetry sample). Raises and clears asynchronously. */
    observe(deviceId: string, metric: string, value: number, time: Date = clock.now()): void {
      observeMany(deviceId, [{ metric, value }], time);
    },

    /** A reported state as protobuf JSON (see EventRules.observeReportedState). */
    observeReportedState(deviceId: string, reportedJson: JsonValue, schema?: DescMessage, time: Date = clock.now()): void {
      observeMany(deviceId, reportedJsonMetrics(reportedJson, schema), time);
    },

    /** A device from the device feed: its reported state is observed; a reconnect after a disconnect wakes the presence sweep. */
    observeDevice(device: Device, time: Date = clock.now()): void {
      // Only a device seen going offline and now back wakes the sweep: the device feed also carries
      // every reported state of online devices, and those must not each cost a sweep. A device
      // offline since before this replica started is cleared by the periodic sweep.
      const id = parseDeviceName(device.name);
      if (!device.connectivity?.online) {
        if (wentOffline.size >= 1_000_000) wentOffline.clear(); // bounded: the periodic sweep is the backstop
        wentOffline.add(id);
      } else if (wentOffline.delete(id)) sweeper.wake();
      if (device.kind.case === undefined) return;
      const reported = (device.kind.value as { reported?: Message }).reported;
      if (!reported) return;
      observeMany(id, reportedMetrics(productByCase(device.kind.case).reportedSchema, reported), time);
    },

    /** Re-reads the alarm rules now (after a local rule change; other replicas' arrive within `refreshMs`). */
    refresh,
    /** Runs the presence sweep and the escalation timer once now (tests drive time and call it). */
    sweep: async () => void (await sweep()),

    async start(): Promise<void> {
      await refresh();
      timer ??= setInterval(() => void refresh(), refreshMs);
      timer.unref?.();
      sweeper.start();
    },

    async stop(): Promise<void> {
      if (timer) clearInterval(timer);
      timer = undefined;
      await sweeper.stop();
      await refreshing;
      await queue.drain();
    },

    /** Resolves when every decision made so far has reached the database (tests). */
    idle: () => queue.drain(),
  };
}
