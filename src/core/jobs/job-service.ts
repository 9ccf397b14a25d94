import type { Job } from "../../../gen/tether/v1/job_pb.js";
import { JobExecution_TargetState as TargetState, type JobExecution } from "../../../gen/tether/v1/job_pb.js";
import type {
  CancelJobRequest,
  CreateJobRequest,
  ListJobExecutionsRequest,
  ListJobExecutionsResponse,
  ListJobsRequest,
  ListJobsResponse,
} from "../../../gen/tether/v1/job_service_pb.js";
import type { Task } from "../../../gen/tether/v1/task_pb.js";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type Access, creatorOf } from "../access/access.js";
import type { Clock } from "../clock.js";
import { deviceName, truncate } from "../devices/device-name.js";
import { FailedPreconditionError, InvalidArgumentError, NotFoundError, Violations } from "../errors.js";
import { decodePageToken, encodePageToken, resolvePageSize } from "../page-token.js";
import type { ChangeFeed } from "../ports/index.js";
import { taskName } from "../tasks/task-record.js";
import { parseStateName, type State } from "../tasks/task-state.js";
import { generateJobId, isValidJobId, jobExecutionName, jobName, parseJobName } from "./job-name.js";
import { type ExecutionRecord, isTerminalJob, type JobRecord, type JobView, toJobProto, toProgressProto } from "./job-record.js";
import type { JobChange, JobRepository } from "../ports/job-repository.js";
import { resumedBucket } from "./job-rollout.js";
import { parseJob } from "./job-validation.js";
import { newJob } from "./new-job.js";
import { watchJob } from "./job-watch.js";

export interface JobServiceDeps {
  jobs: JobRepository;
  clock: Clock;
  /** Ids of jobs that changed (runner steps, API changes): wakes WatchJob streams. */
  jobFeed: ChangeFeed<string>;
  /** Task changes: executions moving wake WatchJob streams of their job. */
  taskFeed: ChangeFeed<Task>;
  /** Called after a committed create, resume or cancel: wake the runner. */
  onJobsChanged?: () => void;
}

export type JobService = ReturnType<typeof createJobService>;

/** The JobService use cases: validation against the command's kind, state changes under the job's lock, progress. */
export function createJobService({ jobs, clock, jobFeed, taskFeed, onJobsChanged }: JobServiceDeps) {
  async function load(name: string, field = "name"): Promise<JobView> {
    const id = parseJobName(name, field);
    const v = await jobs.get(id);
    if (!v) throw new NotFoundError(jobName(id));
    return v;
  }

  async function modify(name: string, change: (job: JobRecord) => JobChange): Promise<Job> {
    const id = parseJobName(name);
    const v = await jobs.modify(id, clock.now(), change);
    if (!v) throw new NotFoundError(jobName(id));
    jobFeed.publish(id);
    onJobsChanged?.();
    return toJobProto(v);
  }

  const unchanged = (j: JobRecord): JobChange => ({
    state: j.state,
    stateReason: j.stateReason,
    endTime: j.endTime,
    rateTokens: j.rateTokens,
    rateTime: j.rateTime,
    cancelInFlight: j.cancelInFlight,
  });
  const ended = (j: JobRecord) => new FailedPreconditionError(`${jobName(j.id)} already ended as ${j.state}`);

  return {
    /** `access` is the caller (an admin: the handler checks it); the job records them as its creator. */
    async createJob(access: Access, req: CreateJobRequest): Promise<Job> {
      if (!req.job) throw InvalidArgumentError.field("job", "is required");
      if (req.jobId !== "" && !isValidJobId(req.jobId)) {
        throw InvalidArgumentError.field("job_id", `"${truncate(req.jobId)}" must be 1-63 lowercase letters, digits or hyphens, starting with a letter`);
      }
      const now = clock.now();
      const v = new Violations();
      const spec = parseJob(req.job, v, now);
      if (spec?.target.kind === "devices") {
        // One query for the whole list: which devices exist, and of which kind.
        const kinds = await jobs.deviceKinds(spec.target.deviceIds);
        const missing = spec.target.deviceIds.filter((id) => !kinds.has(id));
        const wrong = spec.target.deviceIds.filter((id) => kinds.has(id) && kinds.get(id) !== spec.productKind);
        const some = (ids: string[]) => ids.slice(0, 10).map(deviceName).join(", ") + (ids.length > 10 ? ` and ${ids.length - 10} more` : "");
        if (missing.length > 0) v.add("job.devices.devices", `${missing.length} device(s) do not exist: ${some(missing)}`);
        if (wrong.length > 0) v.add("job.devices.devices", `${wrong.length} device(s) are not a ${spec.productKind}, the command's kind: ${some(wrong)}`);
      }
      v.throwIfAny();
      const view = await jobs.create(newJob(req.jobId || generateJobId(), spec!, now, creatorOf(access)), now);
      onJobsChanged?.();
      return toJobProto(view);
    },

    async getJob(name: string): Promise<Job> {
      return toJobProto(await load(name));
    },

    async listJobs(req: ListJobsRequest): Promise<ListJobsResponse> {
      const limit = resolvePageSize(req.pageSize);
      const key = decodePageToken(req.pageToken, "jobs");
      let before: { createTime: Date; id: string } | undefined;
      if (key !== undefined) {
        const i = key.indexOf("|");
        before = { createTime: new Date(key.slice(0, i)), id: key.slice(i + 1) };
      }
      const rows = await jobs.list({ before, limit: limit + 1 });
      const page = rows.slice(0, limit);
      const last = page.at(-1)?.job;
      return {
        $typeName: "tether.v1.ListJobsResponse",
        jobs: page.map(toJobProto),
        nextPageToken: rows.length > limit && last ? encodePageToken(`${last.createTime.toISOString()}|${last.id}`, "jobs") : "",
      };
    },

    cancelJob(req: CancelJobRequest): Promise<Job> {
      if (req.reason.length > 256) throw InvalidArgumentError.field("reason", "must be at most 256 characters");
      const now = clock.now();
      return modify(req.name, (j) => {
        if (isTerminalJob(j.state)) throw ended(j);
        return {
          ...unchanged(j),
          state: "CANCELED",
          stateReason: req.reason ? `canceled: ${req.reason}` : "canceled by request",
          endTime: now,
          skipPending: "the job was canceled",
          cancelInFlight: req.cancelInFlight,
        };
      });
    },

    pauseJob(name: string): Promise<Job> {
      return modify(name, (j) => {
        if (isTerminalJob(j.state)) throw ended(j);
        if (j.state === "PAUSED") return unchanged(j);
        return { ...unchanged(j), state: "PAUSED", stateReason: "paused by request" };
      });
    },

    resumeJob(name: string): Promise<Job> {
      const now = clock.now();
      return modify(name, (j) => {
        if (isTerminalJob(j.state)) throw ended(j);
        if (j.state !== "PAUSED") return unchanged(j);
        const scheduled = j.startTime !== undefined && j.startTime.getTime() > now.getTime();
        return { ...unchanged(j), state: scheduled ? "SCHEDULED" : "RUNNING", stateReason: "resumed", ...resumedBucket(now) };
      });
    },

    async listJobExecutions(req: ListJobExecutionsRequest): Promise<ListJobExecutionsResponse> {
      const view = await load(req.parent, "parent");
      const filter = parseExecutionFilter(req.filter);
      const limit = resolvePageSize(req.pageSize);
      const query = `executions|${req.parent}|${req.filter}`;
      const after = decodePageToken(req.pageToken, query);
      const rows = await jobs.executions(view.job.id, { afterDeviceId: after, limit: limit + 1, ...filter });
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      return {
        $typeName: "tether.v1.ListJobExecutionsResponse",
        executions: page.map((e) => toExecutionProto(view.job.id, e)),
        nextPageToken: rows.length > limit && last ? encodePageToken(last.deviceId, query) : "",
        progress: toProgressProto(view),
      };
    },

    /** WatchJob: the job now, then whenever it or one of its executions changes, until it is settled. */
    watchJob(name: string, signal: AbortSignal): AsyncGenerator<Job> {
      const id = parseJobName(name);
      return watchJob({ id, read: () => jobs.get(id), jobFeed, taskFeed, signal });
    },
  };
}

const TARGET_STATES = ["PENDING", "DISPATCHED", "SKIPPED"];

/** `target_state = SKIPPED OR target_state = PENDING`, or `task_state = FAILED OR task_state = TIMED_OUT`. */
export function parseExecutionFilter(filter: string): { targetStates?: string[]; taskStates?: State[] } {
  if (filter.trim() === "") return {};
  const targetStates: string[] = [];
  const taskStates: State[] = [];
  for (const term of filter.split(/\s+OR\s+/)) {
    const m = /^\s*(target_state|task_state)\s*=\s*([A-Za-z_]+)\s*$/.exec(term);
    const bad = () =>
      InvalidArgumentError.field(
        "filter",
        `cannot parse "${truncate(term.trim())}": expected target_state = PENDING|DISPATCHED|SKIPPED or task_state = SUCCEEDED|FAILED|… joined by OR`,
      );
    if (!m) throw bad();
    const value = m[2]!.toUpperCase().replace(/^(TARGET_)?STATE_/, "");
    if (m[1] === "target_state") {
      if (!TARGET_STATES.includes(value)) throw bad();
      targetStates.push(value);
    } else {
      const s = parseStateName(value);
      if (s === undefined) throw bad();
      taskStates.push(s);
    }
  }
  if (targetStates.length > 0 && taskStates.length > 0) throw InvalidArgumentError.field("filter", "use either target_state or task_state terms, not both");
  return targetStates.length > 0 ? { targetStates } : { taskStates };
}

function toExecutionProto(jobId: string, e: ExecutionRecord): JobExecution {
  return {
    $typeName: "tether.v1.JobExecution",
    name: jobExecutionName(jobId, e.deviceId),
    device: deviceName(e.deviceId),
    task: e.taskId ? taskName(e.deviceId, e.taskId) : "",
    taskState: e.taskState ?? 0,
    targetState: TargetState[e.targetState],
    reason: e.reason || e.taskReason || "",
    createTime: e.createTime ? timestampFromDate(e.createTime) : undefined,
  };
}
