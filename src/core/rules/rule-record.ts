import type { DeviceFilter } from "../devices/device-filter.js";
import { create } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Command } from "../../../gen/tether/v1/command_pb.js";
import type { Job } from "../../../gen/tether/v1/job_pb.js";
import {
  type EventTrigger_Comparison as Comparison,
  type Rule,
  Rule_MisfirePolicy,
  RuleSchema,
  type RuleRun,
  RuleRun_State,
  RuleRunSchema,
} from "../../../gen/tether/v1/rule_pb.js";
import type { Task_State } from "../../../gen/tether/v1/task_pb.js";
import { deviceName } from "../devices/device-name.js";
import { jobName } from "../jobs/job-name.js";
import { productByKindName } from "../products/index.js";
import { taskName } from "../tasks/task-record.js";
import { ruleName, ruleRunName } from "./rule-name.js";
import { type AlarmRuleSpec, toAlarmSpecProto } from "../alarms/alarm-spec.js";

/** When a rule fires: a schedule, or a condition on a device metric. */
export type RuleTrigger = ScheduleTrigger | EventTriggerSpec;
export type ScheduleTrigger = { kind: "cron"; expression: string; timeZone: string } | { kind: "oneShot"; time: Date };

export interface EventTriggerSpec {
  kind: "event";
  metric: string;
  comparison: Comparison;
  threshold: number;
  /** The condition must hold this long (observation time) before the rule fires; 0 = at once. */
  forMs: number;
  /** Minimum time between two firings for one device. */
  cooldownMs: number;
}

/**
 * What a firing addresses. `productKind` is a product's `kindName`. A job target starts
 * a fleet job from `template` (validated as CreateJob validates it) instead of creating tasks.
 */
export type RuleTarget =
  | { kind: "device"; deviceId: string }
  /** `filterText` is LabelSelector.filter as given ("" for none); `filter` is it parsed. */
  | { kind: "selector"; productKind: string; labels: Record<string, string>; filterText: string; filter: DeviceFilter }
  | { kind: "job"; template: Job };

export type MisfirePolicy = "skip" | "fire_once";

/** The user-settable part of a rule, as validated from the API. */
export interface RuleSpec {
  displayName: string;
  trigger: RuleTrigger;
  startTime?: Date;
  endTime?: Date;
  target: RuleTarget;
  command: Command;
  taskTtlMs: number;
  /** The priority of each task a firing creates (0-9); a job target's is its template's `task_priority`. */
  taskPriority: number;
  misfirePolicy: MisfirePolicy;
  /** Set for an alarm rule: its event trigger raises alarms instead of creating tasks (`command` is then empty). */
  alarm?: AlarmRuleSpec;
}

/** A rule as the core and the store see it. */
export interface RuleRecord extends RuleSpec {
  id: string;
  uid: string;
  paused: boolean;
  /** The next scheduled occurrence; undefined for event rules and rules that will not fire again. */
  nextFireTime?: Date;
  lastFireTime?: Date;
  createTime: Date;
  updateTime: Date;
  /** Bumped by every API change (the etag); the scheduler's bookkeeping does not bump it. */
  revision: number;
  /** Who created it, `users/{user}` or `services/{service}`: every firing runs with their rights (see creator-rights.ts). Never changed. */
  creator: string;
}

/** What a run did, as stored (RuleRun.State without its prefix). */
export type RunState = "FIRED" | "PARTIAL" | "FAILED" | "NO_TARGETS" | "SKIPPED";

/** A device a run addressed: the task it got, or why it got none. */
export interface RunTarget {
  deviceId: string;
  taskId?: string;
  error?: string;
}

export interface RuleRunRecord {
  id: number;
  ruleId: string;
  /** '' for scheduled occurrences; the device id for event rules (part of the exactly-once key). */
  subject: string;
  occurrenceTime: Date;
  fireTime: Date;
  state: RunState;
  stateReason: string;
  missedOccurrences: number;
  triggerValue?: number;
  targets: RunTarget[];
  /** Job rules: the job the run created. */
  jobId?: string;
}

export function isScheduled(t: RuleTrigger): t is ScheduleTrigger {
  return t.kind !== "event";
}

/** The public view of a rule. */
export function toRuleProto(r: RuleRecord): Rule {
  const ts = (d: Date | undefined) => (d ? timestampFromDate(d) : undefined);
  const t = r.trigger;
  const trigger: Rule["trigger"] =
    t.kind === "cron"
      ? { case: "cron", value: { $typeName: "tether.v1.CronSchedule", expression: t.expression, timeZone: t.timeZone } }
      : t.kind === "oneShot"
        ? { case: "oneShotTime", value: timestampFromDate(t.time) }
        : {
            case: "eventTrigger",
            value: {
              $typeName: "tether.v1.EventTrigger",
              metric: t.metric,
              comparison: t.comparison,
              threshold: t.threshold,
              forDuration: t.forMs > 0 ? durationFromMs(t.forMs) : undefined,
              cooldown: durationFromMs(t.cooldownMs),
            },
          };
  const target: Rule["target"] =
    r.target.kind === "device"
      ? { case: "device", value: deviceName(r.target.deviceId) }
      : r.target.kind === "job"
        ? { case: "job", value: r.target.template }
        : {
            case: "selector",
            value: {
              $typeName: "tether.v1.LabelSelector",
              kind: productByKindName(r.target.productKind)!.productKind,
              labels: { ...r.target.labels },
              filter: r.target.filterText,
            },
          };
  // A job rule's command, TTL and priority are its job template's; an alarm rule has none.
  const noTasks = r.target.kind === "job" || r.alarm !== undefined;
  return create(RuleSchema, {
    name: ruleName(r.id),
    uid: r.uid,
    displayName: r.displayName,
    trigger,
    startTime: ts(r.startTime),
    endTime: ts(r.endTime),
    target,
    command: noTasks ? undefined : r.command,
    taskTtl: noTasks ? undefined : durationFromMs(r.taskTtlMs),
    taskPriority: noTasks ? undefined : r.taskPriority,
    alarm: r.alarm ? toAlarmSpecProto(r.alarm) : undefined,
    misfirePolicy: r.misfirePolicy === "fire_once" ? Rule_MisfirePolicy.FIRE_ONCE : Rule_MisfirePolicy.SKIP,
    paused: r.paused,
    nextFireTime: ts(r.nextFireTime),
    lastFireTime: ts(r.lastFireTime),
    createTime: ts(r.createTime),
    updateTime: ts(r.updateTime),
    etag: ruleEtag(r),
    creator: r.creator,
  });
}

/**
 * What decides when an event rule fires for which device: its trigger, target and window (not its
 * name or command). An update that changes none of them keeps the evaluator's "for" state.
 */
export function conditionVersion(r: Pick<RuleRecord, "uid" | "trigger" | "target" | "startTime" | "endTime">): string {
  return JSON.stringify([r.uid, r.trigger, r.target, r.startTime?.getTime() ?? null, r.endTime?.getTime() ?? null]);
}

/** Includes part of the uid so a re-created rule never matches an etag of its predecessor. */
export function ruleEtag(r: Pick<RuleRecord, "revision" | "uid">): string {
  return `"${r.revision}-${r.uid.slice(0, 8)}"`;
}

/** The public view of a run; `taskStates` holds the current state of each task that still exists. */
export function toRuleRunProto(run: RuleRunRecord, taskStates: ReadonlyMap<string, Task_State>): RuleRun {
  return create(RuleRunSchema, {
    name: ruleRunName(run.ruleId, run.id),
    occurrenceTime: timestampFromDate(run.occurrenceTime),
    fireTime: timestampFromDate(run.fireTime),
    state: RuleRun_State[run.state],
    stateReason: run.stateReason,
    missedOccurrences: run.missedOccurrences,
    triggerDevice: run.subject ? deviceName(run.subject) : "",
    triggerValue: run.triggerValue ?? 0,
    targets: run.targets.map((t) => ({
      device: deviceName(t.deviceId),
      task: t.taskId ? taskName(t.deviceId, t.taskId) : "",
      taskState: t.taskId ? (taskStates.get(t.taskId) ?? 0) : 0,
      error: t.error ?? "",
    })),
    job: run.jobId ? jobName(run.jobId) : "",
  });
}
