import type { DeviceScope } from "../access/access.js";
import type { TaskRecord } from "../tasks/task-record.js";
import type { State } from "../tasks/task-state.js";
import type { RuleRecord, RuleRunRecord } from "../rules/rule-record.js";

/** A rule to insert; the store assigns `revision`. */
export type NewRule = Omit<RuleRecord, "revision">;

/** What the scheduler decided for one claimed rule (see `planDue`). */
export interface DueDecision {
  run?: { action: "fire" | "skip"; occurrence: Date; missed: number; reason: string };
  /** The rule's new next_fire_time; undefined when it will not fire again. */
  next?: Date;
}

/** The result of one claim-and-fire transaction. */
export interface DueBatch {
  /** Rules claimed (locked and advanced) by this transaction. */
  claimed: number;
  /** Runs this transaction recorded (fired or skipped). */
  runs: RuleRunRecord[];
  /** Tasks it created, committed and QUEUED: to be announced and dispatched. */
  tasks: TaskRecord[];
  /** Jobs it started (job rules), committed and RUNNING: to be rolled out. */
  jobIds: string[];
}

/** One event-rule firing: the observation that completed the condition. */
export interface EventFireRequest {
  ruleId: string;
  /** `conditionVersion` of the rule the evaluator judged: a changed condition is not fired on a stale judgement. */
  version: string;
  deviceId: string;
  occurrence: Date;
  value: number;
  now: Date;
}

export type EventFireResult =
  | { outcome: "fired"; run: RuleRunRecord; tasks: TaskRecord[] }
  /** The rule fired for this device less than a cooldown ago (perhaps on another replica). */
  | { outcome: "cooldown"; lastFireTime: Date }
  /** This occurrence was already recorded (a redelivered observation, another replica). */
  | { outcome: "duplicate" }
  /** The rule is gone, paused, changed, outside its window, or no longer targets the device. */
  | { outcome: "inactive" };

/** An event rule and the devices it currently targets. */
export interface EventRuleView {
  rule: RuleRecord;
  deviceIds: string[];
}

/**
 * The port through which the core persists rules and fires them (PostgreSQL/PGlite adapter in
 * `src/store/rule-store.ts`). Exactly once: a firing inserts its run row, unique per (rule,
 * subject, occurrence), in the same transaction as its tasks; a conflict means someone else fired it.
 */
export interface RuleRepository {
  /** AlreadyExistsError if the id is taken. */
  insert(rule: NewRule): Promise<RuleRecord>;
  get(id: string): Promise<RuleRecord | undefined>;
  /** Rules with id > `afterId`, in id order; with a limited `scope`, only rules targeting a device in it. */
  list(q: { afterId?: string; scope?: DeviceScope; limit: number }): Promise<RuleRecord[]>;
  /**
   * Writes the API-owned fields (and `paused`) if the stored revision is still `next.revision`,
   * bumping it; `reschedule` also writes `nextFireTime`. Returns undefined on a lost race.
   */
  update(next: RuleRecord, opts: { reschedule: boolean }): Promise<RuleRecord | undefined>;
  delete(id: string, expectedRevision?: number): Promise<boolean>;
  /** Runs newest first; `beforeId` continues a previous page. */
  listRuns(ruleId: string, q: { beforeId?: number; limit: number }): Promise<RuleRunRecord[]>;
  /** Current states of tasks that still exist. */
  taskStates(taskIds: string[]): Promise<Map<string, State>>;
  /**
   * In one transaction: claims up to `limit` due, unpaused scheduled rules (FOR UPDATE SKIP
   * LOCKED, so replicas share the work), asks `decide` what to do with each, records the runs,
   * creates their tasks (QUEUED, idempotent request ids, within each device's pending-task cap)
   * or, for job rules, their jobs (deterministic ids), and advances next_fire_time.
   */
  fireDue(now: Date, limit: number, decide: (rule: RuleRecord) => DueDecision): Promise<DueBatch>;
  /** Fires an event rule for one device, if its cooldown has passed, exactly once per occurrence. */
  fireEvent(req: EventFireRequest): Promise<EventFireResult>;
  /** Unpaused event rules with the devices each targets now. */
  eventRules(): Promise<EventRuleView[]>;
  /** The earliest next_fire_time of an unpaused rule, to sleep until then. */
  nextDueTime(): Promise<Date | undefined>;
}
