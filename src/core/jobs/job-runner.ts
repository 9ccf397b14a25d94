import { createTickLoop } from "../tick-loop.js";
import type { Clock } from "../clock.js";
import type { CoreLogger } from "../log.js";
import type { TaskRecord } from "../tasks/task-record.js";
import { jobName } from "./job-name.js";
import type { JobRecord } from "./job-record.js";
import type { JobRepository } from "../ports/job-repository.js";
import { planStep } from "./job-rollout.js";

export interface JobRunnerDeps {
  jobs: JobRepository;
  clock: Clock;
  log: CoreLogger;
  /** Sleep between two looks at the database, ms. @default 1000 */
  tickMs?: number;
  /** Targets claimed per transaction at most. @default 1000 */
  batchSize?: number;
  /** How often a continuous job looks for newly matching devices, ms. @default 5000 */
  rescanMs?: number;
  /**
   * A finite job with every target dispatched only waits for its executions to end: it is stepped
   * (counted, checked for abort and completion) at most this often, ms. @default 5 × tickMs
   */
  settleMs?: number;
  /**
   * Called after each committed step with the tasks it created (QUEUED) and which of their devices
   * were online: announce them on the task feed and dispatch to the online ones (offline devices
   * get theirs on their next hello).
   */
  onTasksCreated?: (tasks: TaskRecord[], onlineDeviceIds: string[]) => void;
  /** A job's state or counts changed (for WatchJob streams). */
  onJobStepped?: (jobId: string) => void;
  /** Cancels one open execution through the normal task cancel path. */
  cancelTask?: (deviceId: string, taskId: string, reason: string) => Promise<void>;
}

export interface RunResult {
  jobs: number;
  dispatched: number;
  /** A job still had targets to claim within its budget when its steps for this tick ran out. */
  busy: boolean;
}

/** Steps per job per tick at most, so one huge unthrottled job cannot starve the others forever. */
const MAX_STEPS_PER_JOB = 20;
/** Open executions canceled per job per tick. */
const CANCEL_BATCH = 500;

export type JobRunner = ReturnType<typeof createJobRunner>;

/**
 * Rolls jobs out. Each tick steps every active job: a step is one transaction that locks the job
 * row (SKIP LOCKED, so replicas share jobs and never step one job twice at once), decides with
 * `planStep` from the job's counts and rate budget, and commits the claimed targets together with
 * their tasks. A crash loses nothing and repeats nothing: an uncommitted step left its targets
 * PENDING, a committed one marked them DISPATCHED with their tasks. `runOnce()` lets tests drive
 * it with a fake clock; `start()` runs it every `tickMs` and on `wake()`.
 */
export function createJobRunner(d: JobRunnerDeps) {
  const { jobs, clock, log } = d;
  const tickMs = d.tickMs ?? 1000;
  const batchSize = d.batchSize ?? 1000;
  const rescanMs = d.rescanMs ?? 5000;
  const settleMs = d.settleMs ?? 5 * tickMs;
  // Jobs with nothing left to dispatch, and when to look at them next. Counting the tasks of a job
  // of 100,000 executions every tick would cost more than the whole rollout step of a busy job.
  const settling = new Map<string, number>();

  async function cancelOpen(job: JobRecord): Promise<void> {
    const open = await jobs.openTasks(job.id, CANCEL_BATCH);
    const reason = `${jobName(job.id)} ${job.state === "ABORTED" ? "was aborted" : "was canceled"}`;
    for (const t of open) {
      try {
        await d.cancelTask?.(t.deviceId, t.taskId, reason);
      } catch (err) {
        // Most often it ended meanwhile (FAILED_PRECONDITION): nothing to cancel.
        log.debug({ err, taskId: t.taskId, jobId: job.id }, "canceling a job execution failed");
      }
    }
    if (open.length < CANCEL_BATCH) await jobs.clearCancelInFlight(job.id);
  }

  async function stepJob(id: string): Promise<{ dispatched: number; busy: boolean }> {
    let dispatched = 0;
    let busy = false;
    for (let i = 0; i < MAX_STEPS_PER_JOB; i++) {
      const now = clock.now();
      const r = await jobs.advance(id, now, (job, byState) => planStep(job, byState, now, batchSize), { rescanBefore: new Date(now.getTime() - rescanMs) });
      if (!r) break; // another replica is stepping it, or it is gone
      dispatched += r.tasks.length;
      if (r.tasks.length > 0) {
        try {
          d.onTasksCreated?.(r.tasks, r.onlineDeviceIds);
        } catch (err) {
          log.error({ err, jobId: id }, "announcing job executions failed; they are stored and the task sweep will send them");
        }
      }
      d.onJobStepped?.(id);
      const j = r.view.job;
      const idle = j.state === "RUNNING" && !(j.target.kind === "selector" && j.target.continuous) && j.targetCount === j.dispatchedCount + j.skippedCount;
      if (idle) settling.set(id, now.getTime() + settleMs);
      else settling.delete(id);
      if (j.cancelInFlight) await cancelOpen(j);
      busy = r.more;
      if (!r.more) break;
    }
    return { dispatched, busy };
  }

  async function runOnce(): Promise<RunResult> {
    const t = clock.now().getTime();
    const ids = (await jobs.activeJobIds(clock.now(), 1000)).filter((id) => (settling.get(id) ?? 0) <= t);
    let dispatched = 0;
    let busy = false;
    for (const id of ids) {
      try {
        const r = await stepJob(id);
        dispatched += r.dispatched;
        busy ||= r.busy;
      } catch (err) {
        log.error({ err, jobId: id }, "job rollout step failed; retried on the next tick");
      }
    }
    return { jobs: ids.length, dispatched, busy };
  }

  const loop = createTickLoop(
    // An unthrottled job with more to claim goes on at once (after a turn of the event loop).
    async () => ((await runOnce()).busy ? 0 : tickMs),
    { defaultDelayMs: tickMs, onError: (err) => log.error({ err }, "job runner tick failed") },
  );

  return {
    runOnce,
    start: loop.start,
    /** Steps the jobs now (a job was created, resumed or canceled in this process). */
    wake(): void {
      settling.clear(); // a job may have been canceled or resumed: look at every job now
      loop.wake();
    },
    stop: loop.stop,
  };
}
