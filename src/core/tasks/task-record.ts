import { create } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Command, CommandResult } from "../../../gen/tether/v1/command_pb.js";
import { type Task, TaskSchema } from "../../../gen/tether/v1/task_pb.js";
import type { Violations } from "../errors.js";
import type { State } from "./task-state.js";

/** A device error as stored. */
export interface TaskErrorRecord {
  code: string;
  message: string;
  details: Record<string, string>;
}

/** A task as the core sees it: the public fields plus the timers and flags only Tether uses. */
export interface TaskRecord {
  id: string;
  deviceId: string;
  sequence: number;
  command: Command;
  state: State;
  stateReason: string;
  requestId?: string;
  requestHash?: string;
  expireTime: Date;
  executionTimeoutMs: number;
  maxAttempts: number;
  attempt: number;
  progress?: { percent: number; message: string };
  result?: CommandResult;
  error?: TaskErrorRecord;
  createTime: Date;
  updateTime: Date;
  sendTime?: Date;
  deliverTime?: Date;
  endTime?: Date;
  /** QUEUED after a timed-out attempt: not before this time. */
  nextAttemptTime?: Date;
  /** DELIVERED/RUNNING: the attempt times out at this time. */
  deadlineTime?: Date;
  /** A CancelTask still has to reach the device (it may hold the task). */
  cancelPending: boolean;
  lateEventCount: number;
  revision: number;
  /** The job this task is an execution of (`{job}` of jobs/{job}), if any. */
  jobId?: string;
  /** 0 (lowest) to 9 (highest): queued tasks of a device are sent highest first. */
  priority: number;
  /** Who created it (`Task.creator`): `users/{u}`, `users/{u}/apiKeys/{k}`, `rules/{r}`, `jobs/{j}`, `services/{s}`; "" if unknown (older tasks). */
  creator: string;
}

/** The priority of a task created without one. */
export const DEFAULT_PRIORITY = 5;
/** The highest priority (the lowest is 0). */
export const MAX_PRIORITY = 9;

/**
 * A priority from the API (`task.priority`, `rule.task_priority`, `job.task_priority`): unset
 * means the default; above the highest is reported under `field`. The proto field is unsigned,
 * so there is no lower bound to check.
 */
export function parsePriority(value: number | undefined, field: string, v: Violations): number {
  if (value === undefined) return DEFAULT_PRIORITY;
  if (value > MAX_PRIORITY) v.add(field, `must be 0 (lowest) to ${MAX_PRIORITY} (highest); unset means ${DEFAULT_PRIORITY}`);
  return value;
}

export function taskName(deviceId: string, taskId: string): string {
  return `devices/${deviceId}/tasks/${taskId}`;
}

/** The public view of a task. */
export function toTaskProto(r: TaskRecord): Task {
  const ts = (d: Date | undefined) => (d ? timestampFromDate(d) : undefined);
  return create(TaskSchema, {
    name: taskName(r.deviceId, r.id),
    command: r.command,
    state: r.state,
    stateReason: r.stateReason,
    requestId: r.requestId ?? "",
    expireTime: ts(r.expireTime),
    executionTimeout: durationFromMs(r.executionTimeoutMs),
    maxAttempts: r.maxAttempts,
    attempt: r.attempt,
    progress: r.progress,
    result: r.result,
    error: r.error,
    createTime: ts(r.createTime),
    updateTime: ts(r.updateTime),
    sendTime: ts(r.sendTime),
    deliverTime: ts(r.deliverTime),
    endTime: ts(r.endTime),
    lateEventCount: r.lateEventCount,
    sequence: BigInt(r.sequence),
    job: r.jobId ? `jobs/${r.jobId}` : "",
    priority: r.priority,
    creator: r.creator,
  });
}
