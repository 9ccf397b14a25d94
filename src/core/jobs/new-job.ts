import { randomUUID } from "node:crypto";
import type { JobSpec } from "./job-record.js";
import type { NewJob } from "../ports/job-repository.js";
import { resumedBucket } from "./job-rollout.js";

/**
 * A job about to be inserted: SCHEDULED if its start time lies ahead, otherwise RUNNING with
 * `startedReason`. Used by CreateJob and by job rules' firings. `creator` (`users/{user}` or
 * `services/{service}`) is whose rights its rollout runs with.
 */
export function newJob(id: string, spec: JobSpec, now: Date, creator: string, startedReason = "started"): NewJob {
  const scheduled = spec.startTime !== undefined && spec.startTime.getTime() > now.getTime();
  return {
    id,
    uid: randomUUID(),
    ...spec,
    state: scheduled ? "SCHEDULED" : "RUNNING",
    stateReason: scheduled ? `starts at ${spec.startTime!.toISOString()}` : startedReason,
    ...resumedBucket(now),
    cancelInFlight: false,
    createTime: now,
    updateTime: now,
    creator,
  };
}
