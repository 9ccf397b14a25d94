import { InvalidArgumentError } from "../errors.js";
import { isValidDeviceId, truncate } from "../devices/device-name.js";
import { parseStateName, type State } from "./task-state.js";

const TASK_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Parses `devices/{device}/tasks/{task}`. */
export function parseTaskName(name: string, field = "name"): { deviceId: string; taskId: string } {
  const m = /^devices\/([^/]+)\/tasks\/([^/]+)$/.exec(name);
  if (!m || !isValidDeviceId(m[1]!) || !TASK_ID.test(m[2]!)) {
    throw InvalidArgumentError.field(field, `"${truncate(name)}" is not a task name: expected devices/{device}/tasks/{task} with a task id (UUID)`);
  }
  return { deviceId: m[1]!, taskId: m[2]! };
}

/** Parses `devices/{device}` or `devices/-` (every device). */
export function parseTaskParent(parent: string, field = "parent"): { deviceId?: string } {
  if (parent === "devices/-") return {};
  const m = /^devices\/([^/]+)$/.exec(parent);
  if (!m || !isValidDeviceId(m[1]!)) {
    throw InvalidArgumentError.field(field, `"${truncate(parent)}" is not a device name: expected devices/{device} or devices/-`);
  }
  return { deviceId: m[1]! };
}

/** Parses ListTasks' filter: `state = X` terms joined by OR. */
export function parseTaskFilter(filter: string, field = "filter"): State[] {
  if (filter.trim() === "") return [];
  return filter.split(/\s+OR\s+/).map((term) => {
    const m = /^\s*state\s*=\s*"?([A-Za-z_]+)"?\s*$/.exec(term);
    const s = m ? parseStateName(m[1]!) : undefined;
    if (s === undefined) {
      throw InvalidArgumentError.field(
        field,
        `cannot parse "${truncate(term.trim())}": expected state = QUEUED (SENT, DELIVERED, RUNNING, SUCCEEDED, REJECTED, FAILED, TIMED_OUT, EXPIRED, CANCELED), joined by OR`,
      );
    }
    return s;
  });
}
