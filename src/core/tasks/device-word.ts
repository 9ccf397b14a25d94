import type { TaskAck, TaskProgress, TaskResult } from "../../../gen/tether/device/v1/uplink_pb.js";
import type { CommandResult } from "../../../gen/tether/v1/command_pb.js";
import type { TaskErrorRecord, TaskRecord } from "./task-record.js";
import { State, type TaskEvent, transition } from "./task-state.js";

/**
 * What a device said about one of its tasks, decided once and applied by either path: the
 * set-based fast path (one guarded UPDATE for many devices' words, `src/store/task-events-sql.ts`)
 * or the lifecycle's compare-and-set (`applyWord`), which handles everything the fast path's
 * guard leaves out (late and duplicate words, a word on a task waiting for its retry).
 */
export interface DeviceWord {
  deviceId: string;
  taskId: string;
  event: Extract<TaskEvent, { type: "ack" | "progress" | "result" }>;
  /** Progress: the device's percent (≤ 100) and message (≤ 256 characters). */
  progress?: { percent: number; message: string };
  /** A success's result. */
  result?: CommandResult;
  /** Why the task ended, in words (results only). */
  stateReason?: string;
  /** A failure's error. */
  error?: TaskErrorRecord;
  /** Detail recorded with a late word. */
  detail: string;
}

export const ackWord = (deviceId: string, ack: TaskAck): DeviceWord => ({
  deviceId,
  taskId: ack.taskId,
  event: { type: "ack" },
  detail: `attempt ${ack.attempt}`,
});

export const progressWord = (deviceId: string, p: TaskProgress): DeviceWord => ({
  deviceId,
  taskId: p.taskId,
  event: { type: "progress" },
  progress: { percent: Math.min(100, p.percent), message: p.message.slice(0, 256) },
  detail: "",
});

/** Undefined for a result without an outcome (malformed). */
export function resultWord(deviceId: string, r: TaskResult): DeviceWord | undefined {
  const o = r.outcome;
  const base = { deviceId, taskId: r.taskId, detail: "" };
  switch (o.case) {
    case "success":
      return { ...base, event: { type: "result", outcome: "succeeded" }, result: o.value, stateReason: "the device reported success" };
    case "rejected":
      return { ...base, event: { type: "result", outcome: "rejected" }, stateReason: o.value.reason.slice(0, 1024) || "rejected by the device" };
    case "failed": {
      const error = { code: o.value.code.slice(0, 128), message: o.value.message.slice(0, 1024), details: o.value.details };
      return { ...base, event: { type: "result", outcome: "failed" }, error, stateReason: `the device failed: ${error.code || "ERROR"}` };
    }
    default:
      return undefined;
  }
}

/**
 * The fields a word changes, on a task the state machine lets it change (the lifecycle applies
 * the state and, for a terminal one, the end time). The fast path's UPDATE writes the same.
 */
export function applyWord(next: TaskRecord, w: DeviceWord, now: Date): void {
  next.nextAttemptTime = undefined;
  switch (w.event.type) {
    case "ack":
      next.deliverTime = now;
      next.deadlineTime = new Date(now.getTime() + next.executionTimeoutMs);
      return;
    case "progress":
      next.progress = w.progress;
      next.deliverTime ??= now;
      next.deadlineTime ??= new Date(now.getTime() + next.executionTimeoutMs);
      return;
    case "result":
      if (w.result) next.result = w.result;
      if (w.error) next.error = w.error;
      if (w.stateReason !== undefined) next.stateReason = w.stateReason;
      return;
  }
}

/** States a task has been sent in, where the fast path may apply a word (QUEUED waiting for a retry is left to the lifecycle). */
const SENT_STATES = [State.SENT, State.DELIVERED, State.RUNNING] as const;

/**
 * The fast path's guard, derived from the state machine so the two cannot disagree: the states
 * from which `event` applies and the state it leads to (the same from each of them).
 */
export function fastGuard(event: DeviceWord["event"]): { from: State[]; to: State } {
  const from: State[] = [];
  let to: State | undefined;
  for (const s of SENT_STATES) {
    const tr = transition(s, event, true);
    if (!tr.ok) continue;
    if (to !== undefined && tr.to !== to) throw new Error(`${event.type} leads to different states`);
    from.push(s);
    to = tr.to;
  }
  if (to === undefined) throw new Error(`${event.type} applies to no sent task`);
  return { from, to };
}
