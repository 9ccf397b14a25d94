import type { DeviceScope } from "../access/access.js";
import type { PendingAudit } from "./audit.js";
import type { DeliveryPolicy_Mode } from "../../../gen/tether/v1/device_pb.js";
import type { State } from "../tasks/task-state.js";
import type { DeviceWord } from "../tasks/device-word.js";
import type { TaskRecord } from "../tasks/task-record.js";

/**
 * A task to insert; the store assigns `sequence`. `audit`: the audit event of the call that asks
 * for it (CreateTask), written by the store in the transaction that inserts the task, also when
 * a group commit inserts many callers' tasks together.
 */
export type NewTask = Omit<TaskRecord, "sequence" | "revision"> & { audit?: PendingAudit };

/** A create's outcome: the new task, or the existing one a repeated request id named (`created: false`). */
export interface CreatedTask {
  task: TaskRecord;
  created: boolean;
}

/** A device's word the set-based path applied: the task as now stored, and whether its device has queued tasks or cancels to send. */
export interface AppliedWord {
  task: TaskRecord;
  pendingWork: boolean;
}

/** What the delivery planner sees of a device while its row is locked. */
export interface DeliverySnapshot {
  online: boolean;
  mode: DeliveryPolicy_Mode;
  sent: number;
  delivered: number;
  running: number;
}

/**
 * The port through which the core persists tasks (PostgreSQL/PGlite adapter in
 * `src/store/task-store.ts`). Every state change is a compare-and-set on `revision`, so
 * replicas racing on the same task apply each change once.
 */
export interface TaskRepository {
  /**
   * Inserts a task in one transaction with its checks: NotFoundError if the device does not
   * exist, the existing task if `requestId` was used before (`created: false`), and
   * ResourceExhaustedError if the device already has its maximum of open tasks.
   */
  create(task: NewTask): Promise<CreatedTask>;
  /**
   * Creates a batch of new tasks in one transaction (group commit), each decided as `create`
   * decides it, with its own outcome (an Error for a refusal). A task its device can take now is
   * created SENT (attempt 1): the caller sends it once this resolves. `now` is read under the
   * device locks.
   */
  createMany(tasks: readonly NewTask[], now: () => Date): Promise<(CreatedTask | Error)[]>;
  get(taskId: string): Promise<TaskRecord | undefined>;
  /**
   * Many devices' words on their tasks in one guarded statement (group commit): each applied if
   * the task is the device's and in a state the word applies to from a sent state (`fastGuard`);
   * undefined otherwise (unknown, foreign, late, duplicate), for the lifecycle to handle.
   */
  applyWords(words: readonly DeviceWord[], now: Date): Promise<(AppliedWord | undefined)[]>;
  /** Newest first; `beforeSequence` continues a previous page. */
  /** `scope` limits the tasks to devices the caller may see (all if omitted). */
  list(q: { deviceId?: string; states?: State[]; scope?: DeviceScope; beforeSequence?: number; limit: number }): Promise<TaskRecord[]>;
  /** Writes `next` if the stored revision is still `next.revision`; returns the stored result or undefined. */
  update(next: TaskRecord): Promise<TaskRecord | undefined>;
  /** Records an event that arrived late or twice; it changes nothing else. */
  recordLate(taskId: string, event: string, taskState: State, detail: string, now: Date): Promise<void>;
  /**
   * Under the device's row lock: asks `plan` how many tasks may be sent now, then moves that many
   * due QUEUED tasks (oldest first) to SENT and returns them. Replicas never send the same task twice.
   * `now` is read once the row is locked and the open tasks counted, so a send time is never earlier
   * than the end of the task whose completion freed the slot (tasks keep their order in time).
   */
  claimForSend(deviceId: string, now: () => Date, plan: (s: DeliverySnapshot) => number): Promise<TaskRecord[]>;
  /** The device's open tasks in delivery order. */
  openTasks(deviceId: string): Promise<TaskRecord[]>;
  /** Tasks whose timers are due: expiry (QUEUED/SENT) or execution deadline (DELIVERED/RUNNING). */
  dueTimers(now: Date, limit: number): Promise<TaskRecord[]>;
  /** SENT tasks of online devices not acknowledged since `sentBefore`: to be sent again. */
  unacknowledged(sentBefore: Date, limit: number): Promise<TaskRecord[]>;
  /** Online devices with QUEUED tasks that are due now (new, or past their retry backoff). */
  devicesWithDueTasks(now: Date, limit: number): Promise<string[]>;
  /** Cheap check before a dispatch pass: does the device have queued tasks or undelivered cancels? */
  pendingWork(deviceId: string): Promise<{ queued: boolean; cancels: boolean }>;
  /** Tasks whose cancellation still has to reach the device. */
  pendingCancels(deviceId: string): Promise<TaskRecord[]>;
  /** Marks a cancellation as sent. */
  clearCancelPending(taskId: string): Promise<void>;
}
