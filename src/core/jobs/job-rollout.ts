import { isTerminal, State } from "../tasks/task-state.js";
import type { AbortSpec, JobRecord, JobState, RolloutSpec } from "./job-record.js";

// The rollout as pure functions of the job row and its execution counts: what the runner decides
// under the job's row lock on every tick. No I/O, no clock: `now` comes in, so tests drive time.

/** Execution counts derived from tasks grouped by state. */
export interface ExecutionCounts {
  total: number;
  open: number;
  finished: number;
  succeeded: number;
  /** FAILED + TIMED_OUT + REJECTED: what the abort criteria count. */
  failures: number;
}

const FAILURES = [State.FAILED, State.TIMED_OUT, State.REJECTED];

export function countsOf(byState: ReadonlyMap<State, number>): ExecutionCounts {
  const c: ExecutionCounts = { total: 0, open: 0, finished: 0, succeeded: 0, failures: 0 };
  for (const [s, n] of byState) {
    c.total += n;
    if (isTerminal(s)) c.finished += n;
    else c.open += n;
    if (s === State.SUCCEEDED) c.succeeded += n;
    if (FAILURES.includes(s)) c.failures += n;
  }
  return c;
}

/**
 * The rate the rollout may use now, executions per minute; 0 means unlimited. An exponential
 * rollout multiplies its base by `factor` for every `step` successes, capped by `maxPerMinute`.
 */
export function currentRatePerMinute(r: RolloutSpec, succeeded: number): number {
  if (!r.exponential) return r.maxPerMinute;
  const { basePerMinute, factor, step } = r.exponential;
  // Capped exponent: past 2^1000 the number is Infinity anyway.
  const grown = basePerMinute * factor ** Math.min(1000, Math.floor(succeeded / step));
  return r.maxPerMinute > 0 ? Math.min(r.maxPerMinute, grown) : grown;
}

/**
 * The token bucket's capacity: two seconds of the rate (at least one execution), so a tick that
 * comes a little late does not lose the budget, and no burst ever exceeds two seconds' worth.
 */
export function bucketCapacity(ratePerMinute: number): number {
  return Math.max(1, (ratePerMinute / 60) * 2);
}

/** Whether the abort criteria are met, and a sentence saying where they stand. */
export function abortVerdict(a: AbortSpec | undefined, c: ExecutionCounts): { abort: boolean; text: string } {
  if (!a) return { abort: false, text: "no abort criteria" };
  const pct = c.finished > 0 ? (c.failures * 100) / c.finished : 0;
  const stand = `${c.failures} failed of ${c.finished} finished (${pct.toFixed(1)} %)`;
  if (c.finished >= a.minFinished && pct > a.failurePercent) {
    return { abort: true, text: `${stand} > ${a.failurePercent} % with at least ${a.minFinished} finished` };
  }
  return { abort: false, text: `${stand}; aborts above ${a.failurePercent} % once ${a.minFinished} have finished` };
}

export function abortStatus(a: AbortSpec | undefined, c: ExecutionCounts): string {
  return abortVerdict(a, c).text;
}

/** What one step of the rollout does to a job. */
export interface StepDecision {
  state: JobState;
  stateReason: string;
  /** Set when the job ends in this step. */
  endTime?: Date;
  /** Pending targets to claim and turn into tasks now. */
  dispatch: number;
  /** Mark every pending target SKIPPED with this reason (abort). */
  skipPending?: string;
  rateTokens: number;
  rateTime?: Date;
  cancelInFlight: boolean;
}

/**
 * Decides one step for a job: start a scheduled job whose time has come, abort on the criteria,
 * complete a finite job whose executions all ended, or claim as many targets as the rate's
 * token bucket and `batchSize` allow. Called by the store with the job row locked, so the
 * decision and its effects commit together.
 */
export function planStep(job: JobRecord, byState: ReadonlyMap<State, number>, now: Date, batchSize: number): StepDecision {
  const keep: StepDecision = {
    state: job.state,
    stateReason: job.stateReason,
    endTime: job.endTime,
    dispatch: 0,
    rateTokens: job.rateTokens,
    rateTime: job.rateTime,
    cancelInFlight: job.cancelInFlight,
  };
  let state = job.state;
  let reason = job.stateReason;
  let tokens = job.rateTokens;
  let since = job.rateTime;
  if (state === "SCHEDULED") {
    if (job.startTime && job.startTime.getTime() > now.getTime()) return keep;
    state = "RUNNING";
    reason = "started";
    tokens = 1; // the first execution goes at once; the rate governs the rest
    since = now;
  }
  if (state !== "RUNNING") return keep;

  const c = countsOf(byState);
  const verdict = abortVerdict(job.abort, c);
  if (verdict.abort) {
    return {
      state: "ABORTED",
      stateReason: `aborted: ${verdict.text}`,
      endTime: now,
      dispatch: 0,
      skipPending: "the job was aborted",
      rateTokens: 0,
      rateTime: now,
      cancelInFlight: job.abort!.cancelInFlight,
    };
  }
  const pending = Math.max(0, job.targetCount - job.dispatchedCount - job.skippedCount);
  const continuous = job.target.kind === "selector" && job.target.continuous;
  if (pending === 0 && c.open === 0 && !continuous) {
    const outcome = c.total === 0 ? "no device got an execution" : `${c.succeeded} of ${c.total} executions succeeded, ${c.failures} failed`;
    return { ...keep, state: "COMPLETED", stateReason: `completed: ${outcome}`, endTime: now };
  }
  const rate = currentRatePerMinute(job.rollout, c.succeeded);
  if (rate === 0) return { ...keep, state, stateReason: reason, dispatch: Math.min(pending, batchSize), rateTokens: 0, rateTime: now };
  const elapsed = since ? Math.max(0, now.getTime() - since.getTime()) : 0;
  tokens = Math.min(bucketCapacity(rate), tokens + (elapsed * rate) / 60_000);
  const dispatch = Math.min(pending, batchSize, Math.floor(tokens));
  return { ...keep, state, stateReason: reason, dispatch, rateTokens: tokens - dispatch, rateTime: now };
}

/** A paused or resumed job's bucket: resuming starts from one token, so a pause is never caught up. */
export function resumedBucket(now: Date): { rateTokens: number; rateTime: Date } {
  return { rateTokens: 1, rateTime: now };
}
