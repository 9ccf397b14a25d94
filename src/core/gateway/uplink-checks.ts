import { type Uplink, UplinkSchema } from "../../../gen/tether/device/v1/uplink_pb.js";
import { boundViolations } from "../device-bounds.js";
import type { StoredDevice } from "../ports/device-repository.js";
import { deviceName } from "../devices/device-name.js";
import { NotFoundError, PermissionDeniedError, Violations } from "../errors.js";
import { taskName } from "../tasks/task-record.js";
import type { TaskRepository } from "../ports/task-repository.js";
import { METRIC_PATTERN } from "../telemetry/sample-validation.js";

/** Most envelopes in one PublishUplink call. */
export const MAX_UPLINKS_PER_CALL = 1000;
/** Most samples in one TelemetryBatch (the telemetry pipeline's own batch limit). */
export const MAX_SAMPLES_PER_BATCH = 10_000;

const TASK_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * What an HTTP device is told synchronously, before anything is taken: malformed envelopes
 * (INVALID_ARGUMENT with every bad field), then task ids that are unknown (NOT_FOUND) or another
 * device's (PERMISSION_DENIED). Over MQTT the same uplink is dropped and counted by the processor;
 * over HTTP the device can be told, and fix or stop resending. These are reads only: the uplink
 * processor stays the one place that changes state.
 */
export async function checkUplinks(device: StoredDevice, deviceId: string, uplinks: Uplink[], tasks: TaskRepository): Promise<void> {
  const v = new Violations();
  if (uplinks.length === 0) v.add("uplinks", "at least one envelope is required");
  if (uplinks.length > MAX_UPLINKS_PER_CALL) v.add("uplinks", `at most ${MAX_UPLINKS_PER_CALL} envelopes per call, got ${uplinks.length}`);
  v.throwIfAny();
  const taskRefs: Array<{ field: string; taskId: string }> = [];
  for (const [i, up] of uplinks.entries()) {
    const at = `uplinks[${i}]`;
    for (const o of boundViolations(UplinkSchema, up, 10)) v.add(`${at}.${o.field}`, o.description);
    const body = up.body;
    switch (body.case) {
      case undefined:
        v.add(`${at}.body`, "is empty: set one of ack, progress, result, state or telemetry");
        break;
      case "hello":
        v.add(`${at}.hello`, "is for MQTT sessions; over HTTP, call PollDownlink to get pending tasks");
        break;
      case "currentTaskQuery":
        v.add(`${at}.current_task_query`, "is for MQTT sessions; over HTTP, call PollDownlink");
        break;
      case "certificateRenewal":
        // Its answer is a CertificateUpdate downlink, which only MQTT sessions receive so far.
        v.add(`${at}.certificate_renewal`, "is for MQTT sessions: its answer comes on the MQTT downlink");
        break;
      case "ack":
      case "progress":
      case "result": {
        const field = `${at}.${body.case}.task_id`;
        if (!TASK_ID.test(body.value.taskId)) v.add(field, "must be the task_id (a UUID) of a task this device received");
        else taskRefs.push({ field, taskId: body.value.taskId.toLowerCase() });
        if (body.case === "progress" && body.value.percent > 100) v.add(`${at}.progress.percent`, "must be between 0 and 100");
        if (body.case === "result" && body.value.outcome.case === undefined) v.add(`${at}.result.outcome`, "is required: set success, rejected or failed");
        break;
      }
      case "state": {
        const got = body.value.kind.case;
        const want = device.device.kind.case;
        if (got === undefined) v.add(`${at}.state`, `is empty: set ${snake(want)}`);
        else if (got !== want) v.add(`${at}.state.${snake(got)}`, `${deviceName(deviceId)} is a ${snake(want)}, not a ${snake(got)}`);
        break;
      }
      case "telemetry": {
        const samples = body.value.samples;
        if (samples.length === 0) v.add(`${at}.telemetry.samples`, "at least one sample is required");
        if (samples.length > MAX_SAMPLES_PER_BATCH)
          v.add(`${at}.telemetry.samples`, `at most ${MAX_SAMPLES_PER_BATCH} samples per batch, got ${samples.length}`);
        for (const [j, s] of samples.slice(0, MAX_SAMPLES_PER_BATCH).entries()) {
          if (!METRIC_PATTERN.test(s.metric))
            v.add(`${at}.telemetry.samples[${j}].metric`, "must be 1–64 letters, digits, '_', '.' or '-', starting with a letter or digit");
          if (!Number.isFinite(s.value)) v.add(`${at}.telemetry.samples[${j}].value`, "must be a finite number");
          if (v.list.length >= 100) break; // enough to show what is wrong
        }
        break;
      }
    }
  }
  v.throwIfAny();
  // Each distinct task once; the first offending reference is reported.
  const seen = new Map<string, Awaited<ReturnType<TaskRepository["get"]>>>();
  for (const { field, taskId } of taskRefs) {
    if (!seen.has(taskId)) seen.set(taskId, await tasks.get(taskId));
    const t = seen.get(taskId);
    if (!t) throw new NotFoundError(`${taskName(deviceId, taskId)} (${field})`);
    if (t.deviceId !== deviceId) {
      throw new PermissionDeniedError(`${field}: task ${taskId} is not a task of ${deviceName(deviceId)}; a device may only report on its own tasks`);
    }
  }
}

function snake(s: string | undefined): string {
  return (s ?? "product").replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}
