import { type DeviceFilter, parseDeviceFilter, pinnedKind } from "../devices/device-filter.js";
import { didYouMean } from "../did-you-mean.js";
import { create } from "@bufbuild/protobuf";
import { durationMs, timestampDate } from "@bufbuild/protobuf/wkt";
import type { Duration } from "@bufbuild/protobuf/wkt";
import type { Command } from "../../../gen/tether/v1/command_pb.js";
import { EventTrigger_ComparisonSchema, type Rule, Rule_MisfirePolicy } from "../../../gen/tether/v1/rule_pb.js";
import { parseDeviceName, truncate } from "../devices/device-name.js";
import { JobSchema } from "../../../gen/tether/v1/job_pb.js";
import { InvalidArgumentError, Violations } from "../errors.js";
import { parseJob } from "../jobs/job-validation.js";
import { LINK_METRICS, PRODUCTS, productByCase, productByKindName, type Product } from "../products/index.js";
import { parsePriority } from "../tasks/task-record.js";
import { TASK_DEFAULTS } from "../tasks/task-request.js";
import { reportedMetricNames } from "./reported-metrics.js";
import type { MisfirePolicy, RuleSpec, RuleTarget, RuleTrigger } from "./rule-record.js";
import { type AlarmRuleSpec, checkOnlineCondition, ONLINE_METRIC, parseAlarmSpec } from "../alarms/alarm-spec.js";
import { compare } from "./event-evaluator.js";
import { CommandSchema } from "../../../gen/tether/v1/command_pb.js";

export type { RuleSpec };
import { canonicalTimeZone, compileCron, nextOccurrence } from "./schedule.js";

const SECOND = 1000;
const DAY = 86_400_000;
export const RULE_DEFAULTS = { cooldownMs: 5 * 60 * SECOND, maxCooldownMs: 30 * DAY, maxForMs: DAY, maxPreview: 100, defaultPreview: 10 };
/** Telemetry metric names and reported-state field paths (`current_brew.progress_percent`). */
const METRIC = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;
const LABEL_KEY = /^[a-z][a-z0-9_.-]{0,62}$/;

export interface ParseOptions {
  now: Date;
  /**
   * Whether the trigger and window must still lie ahead (create, or an update that changes them).
   * An update of another field leaves a rule whose one-shot time has passed alone.
   */
  checkFuture: boolean;
}

/**
 * Validates a Rule from a request and returns its spec, adding every bad field to `v` under
 * `prefix` (`rule`). What needs I/O is left to the caller: that a target device exists and that
 * the command fits its kind (`checkCommand`). A selector's kind is checked here.
 */
export function parseRule(input: Rule, prefix: string, v: Violations, opts: ParseOptions): RuleSpec | undefined {
  const before = v.list.length;
  if (input.displayName.length > 256) v.add(`${prefix}.display_name`, "must be at most 256 characters");
  const window = parseWindow(input, prefix, v, opts);
  const trigger = parseTrigger(input, prefix, v, opts, window);
  const target = parseTarget(input, prefix, v, opts);
  const isJob = input.target.case === "job";
  const alarm = input.alarm ? parseAlarmRule(input, trigger, prefix, v) : undefined;
  if (!input.alarm && trigger?.kind === "event" && trigger.metric === ONLINE_METRIC) {
    v.add(
      `${prefix}.event_trigger.metric`,
      `${ONLINE_METRIC} is the presence metric of alarm rules (set alarm): a device that went offline sends no observation that could fire a task rule`,
    );
  }
  if (input.alarm) {
    if (target?.kind === "selector") checkEventMetric(trigger, productByKindName(target.productKind), `${prefix}.event_trigger.metric`, v);
  } else if (target?.kind === "selector") {
    const product = productByKindName(target.productKind);
    checkCommand(input.command, product, `${prefix}.command`, v);
    checkEventMetric(trigger, product, `${prefix}.event_trigger.metric`, v);
  } else if (isJob) {
    if (input.command) v.add(`${prefix}.command`, "must be unset for a job target: set job.command");
    if (input.taskTtl) v.add(`${prefix}.task_ttl`, "must be unset for a job target: set job.task_ttl");
    if (input.taskPriority !== undefined) v.add(`${prefix}.task_priority`, "must be unset for a job target: set job.task_priority");
    if (trigger?.kind === "event") v.add(`${prefix}.event_trigger`, "cannot start a job: use cron or one_shot_time");
  } else if (!input.command || input.command.kind.case === undefined) v.add(`${prefix}.command`, "is required");

  let taskTtlMs = TASK_DEFAULTS.ttlMs;
  if (input.taskTtl && !isJob && !input.alarm) {
    taskTtlMs = ms(input.taskTtl);
    if (!(taskTtlMs >= SECOND && taskTtlMs <= TASK_DEFAULTS.maxTtlMs)) v.add(`${prefix}.task_ttl`, "must be between 1s and 30 days");
  }
  // A job target's executions take its template's job.task_priority (parseJob checks it), as
  // its TTL; the rule's own stays the default, unused.
  const taskPriority = parsePriority(isJob || input.alarm ? undefined : input.taskPriority, `${prefix}.task_priority`, v);
  let misfirePolicy: MisfirePolicy = "skip";
  if (input.misfirePolicy === Rule_MisfirePolicy.FIRE_ONCE) misfirePolicy = "fire_once";
  else if (input.misfirePolicy !== Rule_MisfirePolicy.UNSPECIFIED && input.misfirePolicy !== Rule_MisfirePolicy.SKIP) {
    v.add(`${prefix}.misfire_policy`, `unknown MisfirePolicy ${input.misfirePolicy}`);
  }
  if (v.list.length > before || !trigger || !target) return undefined;
  // An alarm rule carries no command: an empty one keeps RuleSpec's shape.
  const command = target.kind === "job" ? target.template.command! : alarm ? create(CommandSchema) : input.command!;
  return { displayName: input.displayName, trigger, ...window, target, command, taskTtlMs, taskPriority, misfirePolicy, alarm };
}

/**
 * An alarm rule's own constraints: an event trigger on a device or selector, no task fields, and
 * its AlarmSpec. `online` must mean "offline" (see checkOnlineCondition).
 */
function parseAlarmRule(input: Rule, trigger: RuleTrigger | undefined, prefix: string, v: Violations): AlarmRuleSpec | undefined {
  const field = `${prefix}.alarm`;
  const why = "must be unset for an alarm rule: it raises alarms, not tasks";
  if (input.command) v.add(`${prefix}.command`, why);
  if (input.taskTtl) v.add(`${prefix}.task_ttl`, why);
  if (input.taskPriority !== undefined) v.add(`${prefix}.task_priority`, why);
  if (input.trigger.case !== undefined && input.trigger.case !== "eventTrigger") {
    v.add(
      `${prefix}.${input.trigger.case === "cron" ? "cron" : "one_shot_time"}`,
      "an alarm rule needs an event_trigger: alarms are raised on conditions, not on schedules",
    );
  }
  if (input.target.case === "job") v.add(`${prefix}.job`, "an alarm rule targets a device or a selector");
  const event = trigger?.kind === "event" ? trigger : undefined;
  if (event?.metric === ONLINE_METRIC) {
    checkOnlineCondition(event.comparison, event.threshold, `${prefix}.event_trigger`, v, (x) => compare(x, event.comparison, event.threshold));
  }
  return parseAlarmSpec(input.alarm!, event, field, v);
}

/** Start and end times; the end must follow the start and, for a changed window, lie ahead. */
export function parseWindow(input: Rule, prefix: string, v: Violations, opts: ParseOptions): { startTime?: Date; endTime?: Date } {
  const startTime = input.startTime ? timestampDate(input.startTime) : undefined;
  const endTime = input.endTime ? timestampDate(input.endTime) : undefined;
  if (startTime && endTime && endTime.getTime() <= startTime.getTime()) v.add(`${prefix}.end_time`, "must be after start_time");
  else if (endTime && opts.checkFuture && endTime.getTime() <= opts.now.getTime()) v.add(`${prefix}.end_time`, "must be in the future");
  return { startTime, endTime };
}

/** The trigger oneof: a cron schedule, a one-shot time or an event condition. */
export function parseTrigger(
  input: Rule,
  prefix: string,
  v: Violations,
  opts: ParseOptions,
  window: { startTime?: Date; endTime?: Date },
): RuleTrigger | undefined {
  const t = input.trigger;
  switch (t.case) {
    case undefined:
      v.add(`${prefix}.trigger`, "is required: set cron, one_shot_time or event_trigger");
      return undefined;
    case "cron": {
      const field = `${prefix}.cron`;
      const zone = t.value.timeZone === "" ? "UTC" : canonicalTimeZone(t.value.timeZone);
      if (zone === undefined)
        v.add(`${field}.time_zone`, `unknown time zone "${truncate(t.value.timeZone)}": expected an IANA name such as Europe/Paris or UTC`);
      const expression = t.value.expression.trim();
      if (expression === "") {
        v.add(`${field}.expression`, 'is required, e.g. "0 30 7 * * 1-5" (seconds minutes hours day-of-month month day-of-week)');
        return undefined;
      }
      if (expression.length > 256) {
        v.add(`${field}.expression`, "must be at most 256 characters");
        return undefined;
      }
      try {
        compileCron(expression, zone ?? "UTC");
      } catch (err) {
        v.add(`${field}.expression`, `invalid cron expression: ${err instanceof Error ? err.message : String(err)}`);
        return undefined;
      }
      if (zone === undefined) return undefined;
      const trigger: RuleTrigger = { kind: "cron", expression, timeZone: zone };
      if (opts.checkFuture && !nextOccurrence({ trigger, ...window }, opts.now)) {
        v.add(
          `${field}.expression`,
          window.endTime || window.startTime ? "has no occurrence between start_time and end_time after now" : "never matches a future time",
        );
      }
      return trigger;
    }
    case "oneShotTime": {
      const time = timestampDate(t.value);
      const field = `${prefix}.one_shot_time`;
      if (opts.checkFuture && time.getTime() <= opts.now.getTime()) v.add(field, "must be in the future");
      else if ((window.startTime && time < window.startTime) || (window.endTime && time >= window.endTime)) v.add(field, "is outside start_time/end_time");
      return { kind: "oneShot", time };
    }
    case "eventTrigger": {
      const e = t.value;
      const field = `${prefix}.event_trigger`;
      const before = v.list.length;
      if (!METRIC.test(e.metric)) {
        v.add(
          `${field}.metric`,
          e.metric === "" ? "is required, e.g. water_level_percent" : "must be 1-64 characters [A-Za-z0-9_.-] starting with a letter, digit or _",
        );
      }
      if (e.comparison === 0 || !EventTrigger_ComparisonSchema.values.some((x) => x.number === e.comparison)) {
        v.add(`${field}.comparison`, "is required: LT, LE, GT, GE, EQ or NE");
      }
      if (!Number.isFinite(e.threshold)) v.add(`${field}.threshold`, "must be a finite number");
      const forMs = e.forDuration ? ms(e.forDuration) : 0;
      if (!(forMs >= 0 && forMs <= RULE_DEFAULTS.maxForMs)) v.add(`${field}.for_duration`, "must be between 0 and 24h");
      const cooldownMs = e.cooldown ? ms(e.cooldown) : RULE_DEFAULTS.cooldownMs;
      if (!(cooldownMs >= SECOND && cooldownMs <= RULE_DEFAULTS.maxCooldownMs)) v.add(`${field}.cooldown`, "must be between 1s and 30 days");
      if (v.list.length > before) return undefined;
      return { kind: "event", metric: e.metric, comparison: e.comparison, threshold: e.threshold, forMs, cooldownMs };
    }
  }
}

function parseTarget(input: Rule, prefix: string, v: Violations, opts: ParseOptions): RuleTarget | undefined {
  const t = input.target;
  if (t.case === "job") {
    const field = `${prefix}.job`;
    const tpl = t.value;
    if (tpl.name !== "") v.add(`${field}.name`, "must be unset: each firing names its job");
    if (tpl.startTime) v.add(`${field}.start_time`, "must be unset: the job starts when the rule fires");
    // CreateJob's own validation, with its fields under the rule's (`rule.job.command`, ...).
    const inner = new Violations();
    const spec = parseJob(tpl, inner, opts.now);
    for (const x of inner.list) v.add(`${prefix}.${x.field}`, x.description);
    if (!spec) return undefined;
    // Only the settable fields: output-only ones are ignored, as on CreateJob.
    const template = create(JobSchema, {
      displayName: tpl.displayName,
      command: tpl.command,
      target: tpl.target,
      rollout: tpl.rollout,
      abortCriteria: tpl.abortCriteria,
      executionTimeout: tpl.executionTimeout,
      maxAttempts: tpl.maxAttempts,
      taskTtl: tpl.taskTtl,
      taskPriority: tpl.taskPriority,
    });
    return { kind: "job", template };
  }
  if (t.case === "device") {
    try {
      return { kind: "device", deviceId: parseDeviceName(t.value, `${prefix}.device`) };
    } catch (err) {
      if (!(err instanceof InvalidArgumentError)) throw err;
      for (const x of err.violations) v.add(x.field, x.description);
      return undefined;
    }
  }
  if (t.case === "selector") {
    const field = `${prefix}.selector`;
    const product = PRODUCTS.find((p) => p.productKind === t.value.kind && t.value.kind !== 0);
    if (!product) v.add(`${field}.kind`, `is required: ${PRODUCTS.map((p) => `PRODUCT_KIND_${p.kindName.toUpperCase()}`).join(" or ")}`);
    const labels = Object.entries(t.value.labels);
    let filter: DeviceFilter = { type: "true" };
    try {
      filter = parseDeviceFilter(t.value.filter, `${field}.filter`);
      const kind = pinnedKind(filter);
      if (kind !== undefined && product && kind !== product.kindName)
        v.add(`${field}.filter`, `selects kind ${kind}, but the selector's kind is ${product.kindName}`);
    } catch (err) {
      if (!(err instanceof InvalidArgumentError)) throw err;
      for (const x of err.violations) v.add(x.field, x.description);
      return undefined;
    }
    const narrowed = labels.length > 0 || filter.type !== "true";
    if (!narrowed) v.add(`${field}.labels`, "must name at least one label, or set a filter (an empty selector would match every device of the kind)");
    for (const [key, value] of labels) {
      if (!LABEL_KEY.test(key)) v.add(`${field}.labels`, `key "${truncate(key, 70)}" must be 1-63 characters [a-z0-9_.-] starting with a lowercase letter`);
      if (value.length > 63) v.add(`${field}.labels`, `value of "${key}" must be at most 63 characters`);
    }
    if (!product || !narrowed) return undefined;
    return { kind: "selector", productKind: product.kindName, labels: { ...t.value.labels }, filterText: t.value.filter, filter };
  }
  v.add(`${prefix}.target`, "is required: set device (devices/{device}), selector (kind and labels) or job (a job template)");
  return undefined;
}

/**
 * What an event rule on `product` can observe: the telemetry metrics it sends, the link metrics
 * every device may send, and its reported state's numeric fields (`current_brew.progress_percent`).
 */
export function eventMetricNames(product: Product): string[] {
  const names = [...product.metrics, ...LINK_METRICS].map((m) => m.name);
  return [...new Set([...names, ...reportedMetricNames(product.reportedSchema)])];
}

/**
 * Refuses an event trigger that could never fire because it names what the target's product does
 * not have: another product's metric, or a near miss of a known metric (`temperature_celcius`).
 * A name no product declares and nothing known resembles is a custom metric: devices may send any
 * (within `TETHER_TELEMETRY_MAX_METRICS_PER_DEVICE`), and a rule on one fires. `device` names a device target (`devices/x`) in the message.
 */
export function checkEventMetric(trigger: RuleTrigger | undefined, product: Product | undefined, field: string, v: Violations, device?: string): void {
  if (trigger?.kind !== "event" || !product || trigger.metric === ONLINE_METRIC) return;
  const names = eventMetricNames(product);
  if (names.includes(trigger.metric)) return;
  const others = PRODUCTS.filter((p) => p !== product).flatMap(eventMetricNames);
  const metric = trigger.metric;
  const known = [...names, ...others];
  const resembles = others.includes(metric) || known.some((n) => n.startsWith(metric) || metric.startsWith(n)) || didYouMean(metric, known) !== undefined;
  if (!resembles) return;
  const which = device ? ` (${device} is one)` : "";
  const meant = didYouMean(metric, names);
  v.add(
    field,
    `"${truncate(metric)}" is not a metric of ${product.pluralLabel}${which}${meant ? ` (did you mean ${meant}?)` : ""}: use one of ${names.join(", ")}, or a custom metric of your own`,
  );
}

/**
 * Checks that `command` is set, is for `product` (the target's kind) and passes the product's
 * own validation. `product` undefined (unknown target kind) only checks presence.
 */
export function checkCommand(command: Command | undefined, product: Product | undefined, field: string, v: Violations, targetText = "the target"): void {
  if (!command || command.kind.case === undefined) {
    v.add(field, product ? `is required: set ${product.kindName}` : "is required");
    return;
  }
  if (!product) return;
  if (command.kind.case !== product.case) {
    const other = productByCase(command.kind.case).kindName;
    v.add(field, `${targetText} is a ${product.kindName}; a ${other} command does not apply to it`);
    return;
  }
  product.validateCommand(command.kind.value, `${field}.${product.kindName}`, v);
}

function ms(d: Duration): number {
  return durationMs(d);
}
