import { parseDeviceFilter } from "../core/devices/device-filter.js";
import { fromJson, type JsonValue, toJson } from "@bufbuild/protobuf";
import { CommandSchema } from "../../gen/tether/v1/command_pb.js";
import { JobSchema } from "../../gen/tether/v1/job_pb.js";
import { EventTrigger_Comparison as Comparison } from "../../gen/tether/v1/rule_pb.js";
import { DEFAULT_PRIORITY } from "../core/tasks/task-record.js";
import type { RuleRecord, RuleRunRecord, RuleTarget, RuleTrigger, RunState } from "../core/rules/rule-record.js";
import type { Sql } from "./database.js";
import type { AlarmRuleSpec } from "../core/alarms/alarm-spec.js";

// How rules and runs look in PostgreSQL, and the mapping to and from the core's records.

export interface RuleRow {
  id: string;
  uid: string;
  display_name: string;
  trigger_kind: string;
  trigger: TriggerJson;
  start_time: Date | null;
  end_time: Date | null;
  target: TargetJson;
  command: JsonValue;
  task_ttl_ms: string | number;
  task_priority: number;
  misfire_policy: string;
  paused: boolean;
  next_fire_time: Date | null;
  last_fire_time: Date | null;
  create_time: Date;
  update_time: Date;
  revision: string | number;
  creator: string;
  alarm: AlarmRuleSpec | null;
}

export type TriggerJson =
  | { cron: { expression: string; timeZone: string } }
  | { oneShotTime: string }
  | { event: { metric: string; comparison: string; threshold: number; forMs: number; cooldownMs: number } };
export type TargetJson = { device: string } | { selector: { kind: string; labels: Record<string, string>; filter?: string } } | { job: JsonValue };

export interface RunRow {
  id: string | number;
  rule_id: string;
  subject: string;
  occurrence_time: Date;
  fire_time: Date;
  state: string;
  state_reason: string;
  missed_occurrences: number;
  trigger_value: number | null;
  targets: Array<{ device: string; task?: string | null; error?: string | null }>;
  job_id: string | null;
}

export function toRow(sql: Sql, r: RuleRecord) {
  return {
    id: r.id,
    uid: r.uid,
    display_name: r.displayName,
    trigger_kind: r.trigger.kind === "oneShot" ? "one_shot" : r.trigger.kind,
    trigger: sql.json(triggerJson(r.trigger)),
    start_time: r.startTime ?? null,
    end_time: r.endTime ?? null,
    target: sql.json(targetJson(r.target)),
    command: sql.json(toJson(CommandSchema, r.command) as JsonValue),
    task_ttl_ms: r.taskTtlMs,
    task_priority: r.taskPriority,
    misfire_policy: r.misfirePolicy,
    paused: r.paused,
    next_fire_time: r.nextFireTime ?? null,
    last_fire_time: r.lastFireTime ?? null,
    create_time: r.createTime,
    update_time: r.updateTime,
    revision: r.revision,
    creator: r.creator,
    alarm: r.alarm ? sql.json(r.alarm as unknown as JsonValue) : null,
  };
}

function targetJson(t: RuleTarget): TargetJson {
  if (t.kind === "device") return { device: t.deviceId };
  if (t.kind === "job") return { job: toJson(JobSchema, t.template) as JsonValue };
  return { selector: { kind: t.productKind, labels: t.labels, ...(t.filterText ? { filter: t.filterText } : {}) } };
}

function triggerJson(t: RuleTrigger): TriggerJson {
  if (t.kind === "cron") return { cron: { expression: t.expression, timeZone: t.timeZone } };
  if (t.kind === "oneShot") return { oneShotTime: t.time.toISOString() };
  return { event: { metric: t.metric, comparison: Comparison[t.comparison], threshold: t.threshold, forMs: t.forMs, cooldownMs: t.cooldownMs } };
}

export function fromRow(r: RuleRow): RuleRecord {
  const tj = r.trigger;
  const trigger: RuleTrigger =
    "cron" in tj
      ? { kind: "cron", expression: tj.cron.expression, timeZone: tj.cron.timeZone }
      : "oneShotTime" in tj
        ? { kind: "oneShot", time: new Date(tj.oneShotTime) }
        : {
            kind: "event",
            metric: tj.event.metric,
            comparison: (Comparison as unknown as Record<string, Comparison>)[tj.event.comparison] ?? Comparison.UNSPECIFIED,
            threshold: tj.event.threshold,
            forMs: tj.event.forMs,
            cooldownMs: tj.event.cooldownMs,
          };
  const target: RuleTarget =
    "device" in r.target
      ? { kind: "device", deviceId: r.target.device }
      : "job" in r.target
        ? { kind: "job", template: fromJson(JobSchema, r.target.job, { ignoreUnknownFields: true }) }
        : selectorTarget(r.target.selector);
  return {
    id: r.id,
    uid: r.uid,
    displayName: r.display_name,
    trigger,
    startTime: r.start_time ?? undefined,
    endTime: r.end_time ?? undefined,
    target,
    command: fromJson(CommandSchema, r.command, { ignoreUnknownFields: true }),
    taskTtlMs: Number(r.task_ttl_ms),
    taskPriority: Number(r.task_priority ?? DEFAULT_PRIORITY),
    misfirePolicy: r.misfire_policy === "fire_once" ? "fire_once" : "skip",
    paused: r.paused,
    nextFireTime: r.next_fire_time ?? undefined,
    lastFireTime: r.last_fire_time ?? undefined,
    createTime: r.create_time,
    updateTime: r.update_time,
    revision: Number(r.revision),
    creator: r.creator,
    alarm: r.alarm ?? undefined,
  };
}

export function fromRunRow(r: RunRow): RuleRunRecord {
  return {
    id: Number(r.id),
    ruleId: r.rule_id,
    subject: r.subject,
    occurrenceTime: r.occurrence_time,
    fireTime: r.fire_time,
    state: r.state as RunState,
    stateReason: r.state_reason,
    missedOccurrences: Number(r.missed_occurrences),
    triggerValue: r.trigger_value ?? undefined,
    targets: r.targets.map((t) => ({ deviceId: t.device, taskId: t.task ?? undefined, error: t.error ?? undefined })),
    jobId: r.job_id ?? undefined,
  };
}

/** A stored selector; its filter was validated when the rule was written, so it parses. */
function selectorTarget(s: { kind: string; labels: Record<string, string>; filter?: string }): RuleTarget {
  const filterText = s.filter ?? "";
  return { kind: "selector", productKind: s.kind, labels: s.labels, filterText, filter: parseDeviceFilter(filterText, "rule.selector.filter") };
}
