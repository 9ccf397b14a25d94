import { randomBytes } from "node:crypto";
import { truncate } from "../devices/device-name.js";
import { InvalidArgumentError } from "../errors.js";

/** `{job}` of `jobs/{job}`: the same shape as a device or rule id, safe in names, logs and request ids. */
const JOB_ID = /^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export function isValidJobId(id: string): boolean {
  return JOB_ID.test(id);
}

export function jobName(id: string): string {
  return `jobs/${id}`;
}

/** `jobs/{job}/executions/{device}`. */
export function jobExecutionName(jobId: string, deviceId: string): string {
  return `jobs/${jobId}/executions/${deviceId}`;
}

/** Parses `jobs/{job}`; InvalidArgument naming `field` otherwise. */
export function parseJobName(name: string, field = "name"): string {
  if (name === "") throw InvalidArgumentError.field(field, "is required, e.g. jobs/lights-off");
  const m = /^jobs\/([^/]+)$/.exec(name);
  if (!m || !isValidJobId(m[1]!)) {
    throw InvalidArgumentError.field(
      field,
      `"${truncate(name)}" is not a job name: expected jobs/{job} where {job} is 1-63 lowercase letters, digits or hyphens starting with a letter`,
    );
  }
  return m[1]!;
}

/** A server-chosen id for CreateJob without `job_id`. */
export function generateJobId(): string {
  return `job-${randomBytes(5).toString("hex")}`;
}
