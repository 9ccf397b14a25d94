import type { TaskAck, TaskProgress, TaskResult } from "../../../gen/tether/device/v1/uplink_pb.js";
import type { TaskRecord } from "../tasks/task-record.js";
import type { State } from "../tasks/task-state.js";
import type { Drop, UplinkDeps } from "./uplink-deps.js";

/**
 * A device's word on one of its tasks: acknowledged, progressing, finished. Unknown or foreign task
 * ids are dropped and counted; duplicates are recorded as late by the lifecycle and change nothing.
 */
export function createTaskEvents(d: Pick<UplinkDeps, "tasks" | "lifecycle" | "dispatcher">, drop: Drop) {
  async function taskOf(deviceId: string, taskId: string): Promise<TaskRecord | undefined> {
    const t = await d.tasks.get(taskId);
    if (!t) return void drop(deviceId, "unknown_task", { taskId });
    if (t.deviceId !== deviceId) return void drop(deviceId, "foreign_task", { taskId });
    return t;
  }

  async function afterTaskEvent(deviceId: string, from: State, to: State): Promise<void> {
    // A slot may have opened for a device with a one-at-a-time policy.
    if (from !== to) await d.dispatcher.kick(deviceId);
  }

  return {
    async ack(deviceId: string, ack: TaskAck): Promise<void> {
      const t = await taskOf(deviceId, ack.taskId);
      if (!t) return;
      const r = await d.lifecycle.apply(
        t,
        { type: "ack" },
        (next, now) => {
          next.deliverTime = now;
          next.deadlineTime = new Date(now.getTime() + next.executionTimeoutMs);
          next.nextAttemptTime = undefined;
        },
        `attempt ${ack.attempt}`,
      );
      return afterTaskEvent(deviceId, r.from, r.task.state);
    },

    async progress(deviceId: string, p: TaskProgress): Promise<void> {
      const t = await taskOf(deviceId, p.taskId);
      if (!t) return;
      const r = await d.lifecycle.apply(t, { type: "progress" }, (next, now) => {
        next.progress = { percent: Math.min(100, p.percent), message: p.message.slice(0, 256) };
        next.deliverTime ??= now;
        next.deadlineTime ??= new Date(now.getTime() + next.executionTimeoutMs);
        next.nextAttemptTime = undefined;
      });
      return afterTaskEvent(deviceId, r.from, r.task.state);
    },

    async result(deviceId: string, result: TaskResult): Promise<void> {
      const t = await taskOf(deviceId, result.taskId);
      if (!t) return;
      const o = result.outcome;
      if (o.case === undefined) return drop(deviceId, "malformed", { taskId: t.id, why: "result without outcome" });
      const outcome = o.case === "success" ? "succeeded" : o.case === "rejected" ? "rejected" : "failed";
      const r = await d.lifecycle.apply(t, { type: "result", outcome }, (next) => {
        if (o.case === "success") {
          next.result = o.value;
          next.stateReason = "the device reported success";
        } else if (o.case === "rejected") {
          next.stateReason = o.value.reason.slice(0, 1024) || "rejected by the device";
        } else {
          next.error = { code: o.value.code.slice(0, 128), message: o.value.message.slice(0, 1024), details: o.value.details };
          next.stateReason = `the device failed: ${next.error.code || "ERROR"}`;
        }
      });
      return afterTaskEvent(deviceId, r.from, r.task.state);
    },
  };
}
