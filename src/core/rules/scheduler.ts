import { createTickLoop } from "../tick-loop.js";
import type { Clock } from "../clock.js";
import type { CoreLogger } from "../log.js";
import type { TaskRecord } from "../tasks/task-record.js";
import { DEFAULT_MISFIRE_GRACE_MS, misfireReason, planDue } from "./misfire.js";
import { isScheduled, type RuleRecord } from "./rule-record.js";
import type { DueDecision, RuleRepository } from "../ports/rule-repository.js";

export interface SchedulerDeps {
  rules: RuleRepository;
  clock: Clock;
  log: CoreLogger;
  /** Longest sleep between two looks at the database, ms (rules created on other replicas). @default 1000 */
  tickMs?: number;
  /** Rules claimed per transaction. @default 500 */
  batchSize?: number;
  /** How late an occurrence may fire and still count as on time (not a misfire). @default 60000 */
  graceMs?: number;
  /** Called after each commit with the tasks it created (QUEUED): announce and dispatch them. */
  onTasksCreated?: (tasks: TaskRecord[]) => void;
  /** Called after each commit with the ids of the jobs job rules started: wake the job runner. */
  onJobsStarted?: (jobIds: string[]) => void;
}

export interface TickResult {
  claimed: number;
  runs: number;
  tasks: number;
}

export type Scheduler = ReturnType<typeof createScheduler>;

/** Transactions per tick at most, so one tick cannot run forever behind a flood of due rules. */
const MAX_BATCHES_PER_TICK = 1000;

/**
 * Fires scheduled rules. Every decision uses `clock.now()` (tests move a fake clock and call
 * `tick()`); exactly-once comes from the repository's claim transaction, so any number of
 * schedulers, in one process or many, may run against one database.
 *
 * `start()` runs the loop: tick, then sleep until the earliest next_fire_time (at most `tickMs`),
 * so an occurrence fires within milliseconds of its time rather than up to a tick late.
 */
export function createScheduler(d: SchedulerDeps) {
  const { rules, clock, log } = d;
  const tickMs = d.tickMs ?? 1000;
  const batchSize = d.batchSize ?? 500;
  const graceMs = d.graceMs ?? DEFAULT_MISFIRE_GRACE_MS;

  function decide(rule: RuleRecord, now: Date): DueDecision {
    if (!isScheduled(rule.trigger) || !rule.nextFireTime) return { next: undefined };
    try {
      const plan = planDue({ trigger: rule.trigger, startTime: rule.startTime, endTime: rule.endTime }, rule.misfirePolicy, rule.nextFireTime, now, graceMs);
      return { next: plan.next, run: plan.run && { ...plan.run, reason: misfireReason(plan.run, now, graceMs) } };
    } catch (err) {
      // A schedule that croner no longer accepts (it was valid when stored): stop it, loudly.
      log.error({ err, ruleId: rule.id }, "cannot compute the rule's schedule; it will not fire again until updated");
      return { next: undefined };
    }
  }

  async function tick(): Promise<TickResult> {
    const total: TickResult = { claimed: 0, runs: 0, tasks: 0 };
    for (let i = 0; i < MAX_BATCHES_PER_TICK; i++) {
      const now = clock.now();
      const batch = await rules.fireDue(now, batchSize, (r) => decide(r, now));
      total.claimed += batch.claimed;
      total.runs += batch.runs.length;
      total.tasks += batch.tasks.length;
      if (batch.tasks.length > 0) {
        try {
          d.onTasksCreated?.(batch.tasks);
        } catch (err) {
          log.error({ err }, "onTasksCreated failed; the tasks are stored and the dispatcher sweep will send them");
        }
      }
      if (batch.jobIds.length > 0) {
        try {
          d.onJobsStarted?.(batch.jobIds);
        } catch (err) {
          log.error({ err }, "onJobsStarted failed; the jobs are stored and the job runner will find them");
        }
      }
      for (const run of batch.runs) log.debug({ ruleId: run.ruleId, occurrence: run.occurrenceTime, state: run.state, tasks: run.targets.length }, "rule run");
      // A claimed rule may be due again at once (catching up within the grace): look again.
      if (batch.claimed === 0) break;
    }
    return total;
  }

  const loop = createTickLoop(
    async () => {
      const r = await tick();
      const next = await rules.nextDueTime();
      const wait = next ? next.getTime() - clock.now().getTime() : tickMs;
      // Due but not claimable means another replica holds it right now: look again shortly.
      return wait > 0 ? Math.min(wait + 1, tickMs) : r.claimed > 0 ? 0 : 25;
    },
    { defaultDelayMs: tickMs, onError: (err) => log.error({ err }, "scheduler tick failed") },
  );

  return {
    tick,
    /** Starts the loop (idempotent). */
    start: loop.start,
    /** Looks at the database now, e.g. after a rule was created or resumed in this process. */
    wake: loop.wake,
    /** Stops the loop and waits for a tick in progress. */
    stop: loop.stop,
  };
}
