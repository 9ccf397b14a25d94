import { create } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Command } from "../../../gen/tether/v1/command_pb.js";
import { DeviceSelector_Mode, type Job, Job_State, JobSchema, type JobProgress, JobProgressSchema } from "../../../gen/tether/v1/job_pb.js";
import type { DeviceFilter } from "../devices/device-filter.js";
import type { State } from "../tasks/task-state.js";
import { jobName } from "./job-name.js";
import { abortStatus, countsOf, currentRatePerMinute } from "./job-rollout.js";

export type JobState = "SCHEDULED" | "RUNNING" | "PAUSED" | "COMPLETED" | "ABORTED" | "CANCELED";

export const TERMINAL_JOB_STATES: ReadonlySet<JobState> = new Set(["COMPLETED", "ABORTED", "CANCELED"]);

/**
 * Which devices a job addresses. An explicit list is materialized at creation and not kept on
 * the record (it may be long): read it with ListJobExecutions. `productKind` filters a selector.
 */
export type JobTarget = { kind: "devices"; deviceIds: string[] } | { kind: "selector"; filterText: string; filter: DeviceFilter; continuous: boolean };

/** The rollout rate: `maxPerMinute` (0 = none), optionally growing from a base. */
export interface RolloutSpec {
  maxPerMinute: number;
  exponential?: { basePerMinute: number; factor: number; step: number };
}

export interface AbortSpec {
  failurePercent: number;
  minFinished: number;
  cancelInFlight: boolean;
}

/** The user-settable part of a job, as validated from the API. */
export interface JobSpec {
  displayName: string;
  command: Command;
  /** The command's product kind name (the product's `kindName`): the only kind the job targets. */
  productKind: string;
  target: JobTarget;
  rollout: RolloutSpec;
  abort?: AbortSpec;
  executionTimeoutMs: number;
  maxAttempts: number;
  taskTtlMs: number;
  /** The priority of each execution's task (0-9). */
  taskPriority: number;
  startTime?: Date;
}

/** A job as the core and the store see it (an explicit device list is not loaded: `deviceIds` is empty). */
export interface JobRecord extends JobSpec {
  id: string;
  uid: string;
  state: JobState;
  stateReason: string;
  targetCount: number;
  dispatchedCount: number;
  skippedCount: number;
  /** Token bucket of the rollout rate: tokens available at `rateTime`. */
  rateTokens: number;
  rateTime?: Date;
  /** Continuous jobs: when the selector was last evaluated. */
  scanTime?: Date;
  /** Open executions still have to be canceled (after CancelJob or an abort that asks for it). */
  cancelInFlight: boolean;
  createTime: Date;
  updateTime: Date;
  endTime?: Date;
  /** Who created it, `users/{user}` or `services/{service}` (a job rule's creator): every rollout batch runs with their rights. */
  creator: string;
}

/** A job with its executions counted by task state. */
export interface JobView {
  job: JobRecord;
  byState: ReadonlyMap<State, number>;
}

/** One target and its task, if created. */
export interface ExecutionRecord {
  deviceId: string;
  targetState: "PENDING" | "DISPATCHED" | "SKIPPED";
  reason: string;
  taskId?: string;
  taskState?: State;
  taskReason?: string;
  createTime?: Date;
}

export function isTerminalJob(s: JobState): boolean {
  return TERMINAL_JOB_STATES.has(s);
}

/** The progress message: counts from the job row (targets) and from its tasks (executions). */
export function toProgressProto(v: JobView): JobProgress {
  const { job, byState } = v;
  const c = countsOf(byState);
  return create(JobProgressSchema, {
    targetCount: BigInt(job.targetCount),
    pendingCount: BigInt(Math.max(0, job.targetCount - job.dispatchedCount - job.skippedCount)),
    skippedCount: BigInt(job.skippedCount),
    executionCount: BigInt(c.total),
    executionsByState: [...byState]
      .filter(([, n]) => n > 0)
      .sort(([a], [b]) => a - b)
      .map(([state, count]) => ({ state, count: BigInt(count) })),
    succeededCount: BigInt(c.succeeded),
    failedCount: BigInt(c.failures),
    inFlightCount: BigInt(c.open),
    rolloutRatePerMinute: job.state === "RUNNING" ? currentRatePerMinute(job.rollout, c.succeeded) : 0,
    abortStatus: abortStatus(job.abort, c),
  });
}

/** The public view of a job. */
export function toJobProto(v: JobView): Job {
  const r = v.job;
  const ts = (d: Date | undefined) => (d ? timestampFromDate(d) : undefined);
  const target: Job["target"] =
    r.target.kind === "devices"
      ? { case: "devices", value: { $typeName: "tether.v1.DeviceList", devices: r.target.deviceIds.map((id) => `devices/${id}`) } }
      : {
          case: "selector",
          value: {
            $typeName: "tether.v1.DeviceSelector",
            filter: r.target.filterText,
            mode: r.target.continuous ? DeviceSelector_Mode.CONTINUOUS : DeviceSelector_Mode.SNAPSHOT,
          },
        };
  return create(JobSchema, {
    name: jobName(r.id),
    uid: r.uid,
    displayName: r.displayName,
    command: r.command,
    target,
    rollout: {
      maxPerMinute: r.rollout.maxPerMinute,
      exponential: r.rollout.exponential && {
        basePerMinute: r.rollout.exponential.basePerMinute,
        incrementFactor: r.rollout.exponential.factor,
        successesPerStep: r.rollout.exponential.step,
      },
    },
    abortCriteria: r.abort && {
      failureThresholdPercent: r.abort.failurePercent,
      minFinishedExecutions: r.abort.minFinished,
      cancelInFlight: r.abort.cancelInFlight,
    },
    executionTimeout: durationFromMs(r.executionTimeoutMs),
    maxAttempts: r.maxAttempts,
    taskTtl: durationFromMs(r.taskTtlMs),
    taskPriority: r.taskPriority,
    startTime: ts(r.startTime),
    state: Job_State[r.state],
    stateReason: r.stateReason,
    progress: toProgressProto(v),
    createTime: ts(r.createTime),
    updateTime: ts(r.updateTime),
    endTime: ts(r.endTime),
    creator: r.creator,
  });
}
