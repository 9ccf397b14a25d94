import type { Command } from "../../../gen/tether/v1/command_pb.js";
import type { DeliveryPolicy_Mode } from "../../../gen/tether/v1/device_pb.js";
import type { Task } from "../../../gen/tether/v1/task_pb.js";
import type { DeviceMeta } from "../access/selector.js";
import { deviceName } from "../devices/device-name.js";
import { AlreadyExistsError, FailedPreconditionError, NotFoundError, PermissionDeniedError, ResourceExhaustedError, type TetherError } from "../errors.js";
import type { CoreLogger } from "../log.js";
import type { ChangeFeed } from "../ports/change-feed.js";
import { productByCase } from "../products/index.js";
import type { Dispatcher } from "./dispatcher.js";
import { type TaskRecord, toTaskProto } from "./task-record.js";
import { State } from "./task-state.js";

// The one way a task comes into being, whoever asks (CreateTask, a rule firing, a job step):
// the same admission checks, decided here, under the device row locks the store holds, and the
// same announcement once the transaction committed. The store runs the SQL; the rules are here.

/** A device's open-task cap when its `delivery_policy.max_pending_tasks` is 0 (unset). */
export const DEFAULT_MAX_PENDING_TASKS = 100;

/** The cap that applies: the device's own, or the default. */
export function openTaskCap(maxPendingTasks: number): number {
  return maxPendingTasks > 0 ? maxPendingTasks : DEFAULT_MAX_PENDING_TASKS;
}

/** What admission needs of a target device, read while the inserting transaction holds its row lock. */
export interface IntakeDevice {
  /** The product kind name, as stored (`Product.kindName`). */
  kind: string;
  /** `delivery_policy.max_pending_tasks` as stored (0: the default). */
  maxPendingTasks: number;
  /** Tasks of the device in an open state (QUEUED, SENT, DELIVERED, RUNNING) as of the lock. */
  openTasks: number;
  /** The same, by state. */
  open: { queued: number; sent: number; delivered: number; running: number };
  /** Its delivery policy's mode. */
  mode: DeliveryPolicy_Mode;
  online: boolean;
  meta: DeviceMeta;
}

/** Why a task was not created on a device. */
export interface Refusal {
  code: "not_found" | "wrong_kind" | "not_permitted" | "busy";
  /** One line naming the device, for a run's or an execution's target and for API errors. */
  message: string;
}

/**
 * The admission of one batch (one transaction). Candidates are decided in order and share each
 * device's cap: three rules firing at one device with room for two get two tasks.
 * `creatorRight` says why a rule's or job's creator may no longer command a device (undefined:
 * allowed); CreateTask checked its caller's rights before the transaction and passes none.
 */
export function createAdmission(devices: ReadonlyMap<string, IntakeDevice>, creatorRight?: (creator: string, device: DeviceMeta) => string | undefined) {
  const admitted = new Map<string, number>();
  return {
    /** Undefined if a task of `kind` may be created on the device now (and counts it), else why not. */
    admit(deviceId: string, kind: string, creator?: string): Refusal | undefined {
      const d = devices.get(deviceId);
      if (!d) return { code: "not_found", message: `${deviceName(deviceId)} does not exist` };
      if (d.kind !== kind) return { code: "wrong_kind", message: `${deviceName(deviceId)} is a ${d.kind}; a ${kind} command does not apply to it` };
      // The creator's right comes before the cap: a run says why it may not command a device
      // rather than that the device is busy.
      const lost = creator === undefined ? undefined : creatorRight?.(creator, d.meta);
      if (lost) return { code: "not_permitted", message: lost };
      const open = d.openTasks + (admitted.get(deviceId) ?? 0);
      const cap = openTaskCap(d.maxPendingTasks);
      if (open >= cap)
        return { code: "busy", message: `${deviceName(deviceId)} already has ${open} open tasks (its delivery_policy.max_pending_tasks is ${cap})` };
      admitted.set(deviceId, (admitted.get(deviceId) ?? 0) + 1);
      return undefined;
    },
  };
}

/** The product kind name a command is for (the kind its device must be). */
export function commandKind(command: Command): string {
  // Validated on the way in (CreateTask, CreateRule, CreateJob): a command always has a case.
  return command.kind.case === undefined ? "" : productByCase(command.kind.case).kindName;
}

/** A refusal as the API error CreateTask answers with. */
export function refusalError(deviceId: string, r: Refusal): TetherError {
  // Kind and rights are checked before the transaction too: only a change in between lands on
  // those two here.
  switch (r.code) {
    case "not_found":
      return new NotFoundError(deviceName(deviceId));
    case "wrong_kind":
      return new FailedPreconditionError(r.message);
    case "not_permitted":
      return new PermissionDeniedError(r.message);
    case "busy":
      return new ResourceExhaustedError(r.message);
  }
}

/**
 * Idempotency: a CreateTask that repeats a `request_id` gets the task it created then, if the
 * command is the same; the same id with another command is a client bug, refused.
 */
export function replayOf(existing: TaskRecord, requestId: string, requestHash: string | undefined): TaskRecord {
  if (existing.requestHash !== requestHash) {
    throw new AlreadyExistsError(`a task with request_id "${requestId}" but a different command on ${deviceName(existing.deviceId)}`);
  }
  return existing;
}

/** The refusal for a rule's or job's task whose deterministic request id was already taken. */
export const REQUEST_ID_TAKEN = "a task with this request id already exists on the device";

export interface TaskAnnouncerDeps {
  feed: ChangeFeed<Task>;
  dispatcher: Pick<Dispatcher, "kick" | "sendClaimed">;
  log: CoreLogger;
}

/**
 * After a commit: every new task on the task feed (watchers, synchronous waits), then one
 * dispatch pass per device with queued tasks. `onlineDeviceIds` limits the passes (a job step
 * over 100,000 offline devices must not cost 100,000 passes; they get their tasks on hello or
 * from the sweep). A task created SENT (its device could take it at once) is published twice,
 * as created (QUEUED) and as sent, so watchers see the whole lifecycle, and is handed to the
 * dispatcher to send, in order after whatever it is sending that device. Never throws: the tasks
 * are committed, and the sweep sends what a failed pass did not. Returns the tasks as created
 * (QUEUED), so a caller answering with one need not convert it again.
 */
export function createTaskAnnouncer(d: TaskAnnouncerDeps) {
  const failed = (deviceId: string) => (err: unknown) => d.log.error({ err, deviceId }, "dispatch after a task was created failed");
  return function announce(created: readonly TaskRecord[], onlineDeviceIds?: readonly string[]): Task[] {
    const published: Task[] = [];
    const passes = new Set(onlineDeviceIds);
    for (const t of created) {
      const p = toTaskProto(t);
      if (t.state === State.SENT) {
        const asCreated: Task = { ...p, state: State.QUEUED, attempt: 0, sendTime: undefined, updateTime: p.createTime };
        d.feed.publish(asCreated);
        d.feed.publish(p);
        published.push(asCreated);
        void d.dispatcher.sendClaimed(t).catch(failed(t.deviceId));
        continue;
      }
      d.feed.publish(p);
      published.push(p);
      if (onlineDeviceIds === undefined) passes.add(t.deviceId);
    }
    for (const deviceId of passes) void d.dispatcher.kick(deviceId).catch(failed(deviceId));
    return published;
  };
}

export type TaskAnnouncer = ReturnType<typeof createTaskAnnouncer>;
