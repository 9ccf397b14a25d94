import { randomUUID } from "node:crypto";
import type { NewTask } from "../ports/task-repository.js";
import { commandHash } from "../tasks/task-request.js";
import { State } from "../tasks/task-state.js";
import type { JobRecord } from "./job-record.js";

/**
 * The request id of a job's task on a device: deterministic, so the unique (device, request_id)
 * index refuses a second task for the same (job, device) even if its target row were somehow
 * dispatched twice. The uid keeps a re-created job of the same name from colliding.
 */
export function jobRequestId(job: Pick<JobRecord, "id" | "uid">): string {
  return `job:${job.id}:${job.uid.slice(0, 8)}`;
}

/** The QUEUED task (execution) a job creates for one device. Its TTL runs from its creation. */
export function taskForJob(job: JobRecord, deviceId: string, now: Date): NewTask {
  return {
    id: randomUUID(),
    deviceId,
    command: job.command,
    state: State.QUEUED,
    stateReason: `created by jobs/${job.id}`,
    requestId: jobRequestId(job),
    requestHash: commandHash(job.command),
    expireTime: new Date(now.getTime() + job.taskTtlMs),
    executionTimeoutMs: job.executionTimeoutMs,
    maxAttempts: job.maxAttempts,
    attempt: 0,
    createTime: now,
    updateTime: now,
    cancelPending: false,
    lateEventCount: 0,
    priority: job.taskPriority,
    jobId: job.id,
    creator: `jobs/${job.id}`,
  };
}
