import type { TaskRecord } from "../tasks/task-record.js";
import type { State } from "../tasks/task-state.js";
import type { ExecutionRecord, JobRecord, JobView } from "../jobs/job-record.js";
import type { StepDecision } from "../jobs/job-rollout.js";

/** A job to insert; `deviceIds` of an explicit target are materialized as job_targets rows. */
export type NewJob = Omit<JobRecord, "targetCount" | "dispatchedCount" | "skippedCount" | "scanTime" | "endTime">;

/** The result of one rollout step (`advance`). */
export interface StepResult {
  view: JobView;
  /** Tasks created by the step, committed and QUEUED: to be announced and dispatched. */
  tasks: TaskRecord[];
  /** The devices of `tasks` that were online: only those are worth a dispatch attempt now. */
  onlineDeviceIds: string[];
  /** Whether another step at once would find more to dispatch (a full batch was claimed). */
  more: boolean;
}

/** A change to a job under its row lock (pause, resume, cancel). */
export interface JobChange {
  state: JobRecord["state"];
  stateReason: string;
  endTime?: Date;
  rateTokens: number;
  rateTime?: Date;
  cancelInFlight: boolean;
  /** Mark pending targets SKIPPED with this reason. */
  skipPending?: string;
}

/**
 * The port through which the core stores jobs and rolls them out (PostgreSQL/PGlite adapter in
 * `src/store/job-store.ts`). Targets live in the database only; exactly once per (job, device)
 * comes from their primary key and from creating each task in the transaction that marks its
 * target dispatched, under the job's row lock.
 */
export interface JobRepository {
  /** The kind of each existing device among `ids` (absent = no such device). */
  deviceKinds(ids: string[]): Promise<Map<string, string>>;
  /**
   * Inserts the job and its targets in one transaction: the listed devices, or every device the
   * selector matches now (one INSERT … SELECT). AlreadyExistsError if the id is taken.
   */
  create(job: NewJob, now: Date): Promise<JobView>;
  get(id: string): Promise<JobView | undefined>;
  /** Newest first; `before` continues after a previous page's last job. */
  list(q: { before?: { createTime: Date; id: string }; limit: number }): Promise<JobView[]>;
  /**
   * Locks the job (waiting for a rollout step in progress), asks `change` what to do and applies
   * it. `change` may throw (e.g. FailedPrecondition) to change nothing. Undefined if no such job.
   */
  modify(id: string, now: Date, change: (job: JobRecord) => JobChange): Promise<JobView | undefined>;
  /** One page of targets with their tasks, in device order. */
  executions(jobId: string, q: { afterDeviceId?: string; limit: number; targetStates?: string[]; taskStates?: State[] }): Promise<ExecutionRecord[]>;
  /** Jobs the runner has work on: running, scheduled and due, or with executions to cancel. */
  activeJobIds(now: Date, limit: number): Promise<string[]>;
  /**
   * One rollout step in one transaction: locks the job (SKIP LOCKED: undefined if another
   * replica is stepping it), adds newly matching devices to a continuous job whose last scan is
   * older than `rescanBefore`, counts executions, asks `decide`, then skips or claims targets,
   * creates their tasks and writes the job row.
   */
  advance(
    id: string,
    now: Date,
    decide: (job: JobRecord, byState: ReadonlyMap<State, number>) => StepDecision,
    opts: { rescanBefore: Date },
  ): Promise<StepResult | undefined>;
  /** Open tasks of a job, to cancel: at most `limit`. */
  openTasks(jobId: string, limit: number): Promise<Array<{ deviceId: string; taskId: string }>>;
  /** Cancellation of in-flight executions is done. */
  clearCancelInFlight(jobId: string): Promise<void>;
}
