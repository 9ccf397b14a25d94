import type { TaskAck, TaskProgress, TaskResult } from "../../../gen/tether/device/v1/uplink_pb.js";
import { ackWord, applyWord, type DeviceWord, progressWord, resultWord } from "../tasks/device-word.js";
import type { TaskRecord } from "../tasks/task-record.js";
import type { Drop, UplinkDeps } from "./uplink-deps.js";

/**
 * A device's word on one of its tasks: acknowledged, progressing, finished. The common case (a
 * word on a task that is out on the device) is applied set-based with other devices' words (the
 * group commit in `batches`); the rest takes the lifecycle's compare-and-set: unknown or foreign
 * task ids are dropped and counted, duplicates and late words are recorded and change nothing.
 */
export function createTaskEvents(d: Pick<UplinkDeps, "tasks" | "lifecycle" | "dispatcher" | "batches">, drop: Drop) {
  async function taskOf(deviceId: string, taskId: string): Promise<TaskRecord | undefined> {
    const t = await d.tasks.get(taskId);
    if (!t) return void drop(deviceId, "unknown_task", { taskId });
    if (t.deviceId !== deviceId) return void drop(deviceId, "foreign_task", { taskId });
    return t;
  }

  async function apply(w: DeviceWord): Promise<void> {
    // A task id that is no UUID cannot be a task: straight to the slow path, which drops it.
    const fast = d.batches && UUID.test(w.taskId) ? await d.batches.word(w) : undefined;
    if (fast) {
      d.lifecycle.published(fast.task);
      // A slot may have opened for a device with a one-at-a-time policy.
      if (fast.pendingWork) await d.dispatcher.kick(w.deviceId);
      return;
    }
    const t = await taskOf(w.deviceId, w.taskId);
    if (!t) return;
    const r = await d.lifecycle.apply(t, w.event, (next, now) => applyWord(next, w, now), w.detail);
    if (r.from !== r.task.state) await d.dispatcher.kick(w.deviceId);
  }

  return {
    ack: (deviceId: string, ack: TaskAck): Promise<void> => apply(ackWord(deviceId, ack)),
    progress: (deviceId: string, p: TaskProgress): Promise<void> => apply(progressWord(deviceId, p)),
    async result(deviceId: string, result: TaskResult): Promise<void> {
      const w = resultWord(deviceId, result);
      if (!w) return drop(deviceId, "malformed", { taskId: result.taskId, why: "result without outcome" });
      return apply(w);
    },
  };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
