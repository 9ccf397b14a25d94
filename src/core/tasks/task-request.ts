import { createHash, randomUUID } from "node:crypto";
import { toBinary } from "@bufbuild/protobuf";
import { durationMs, timestampDate } from "@bufbuild/protobuf/wkt";
import type { Device } from "../../../gen/tether/v1/device_pb.js";
import { type Command, CommandSchema } from "../../../gen/tether/v1/command_pb.js";
import type { CreateTaskRequest } from "../../../gen/tether/v1/task_service_pb.js";
import { Violations } from "../errors.js";
import { productByCase } from "../products/index.js";
import type { NewTask } from "../ports/task-repository.js";
import { parsePriority } from "./task-record.js";
import { State } from "./task-state.js";

const DAY = 86_400_000;
export const TASK_DEFAULTS = {
  ttlMs: 7 * DAY,
  maxTtlMs: 30 * DAY,
  executionTimeoutMs: 60_000,
  maxAttempts: 3,
  waitTimeoutMs: 30_000,
  maxWaitTimeoutMs: 300_000,
};

/**
 * Validates a CreateTaskRequest against the target device and builds the task to store. Every bad
 * field is reported at once; a command for another product kind is INVALID_ARGUMENT.
 */
export function buildTask(req: CreateTaskRequest, device: Device, deviceId: string, now: Date, creator: string): NewTask {
  const v = new Violations();
  const task = req.task;
  const command = task?.command;
  const product = productByCase(device.kind.case!);
  if (!command || command.kind.case === undefined) {
    v.add("task.command", `is required: set ${product.kindName}`);
  } else if (command.kind.case !== product.case) {
    const other = productByCase(command.kind.case).kindName;
    v.add("task.command", `devices/${deviceId} is a ${product.kindName}; a ${other} command does not apply to it`);
  } else {
    product.validateCommand(command.kind.value, `task.command.${product.kindName}`, v);
  }
  if (req.requestId.length > 128) v.add("request_id", "must be at most 128 characters");

  let expireTime = new Date(now.getTime() + TASK_DEFAULTS.ttlMs);
  if (req.ttl && task?.expireTime) v.add("ttl", "set either ttl or task.expire_time, not both");
  if (req.ttl) {
    const ms = durationMs(req.ttl);
    if (ms < 1000 || ms > TASK_DEFAULTS.maxTtlMs) v.add("ttl", "must be between 1s and 30 days");
    else expireTime = new Date(now.getTime() + ms);
  } else if (task?.expireTime) {
    const at = timestampDate(task.expireTime);
    if (at.getTime() <= now.getTime()) v.add("task.expire_time", "must be in the future");
    else if (at.getTime() - now.getTime() > TASK_DEFAULTS.maxTtlMs) v.add("task.expire_time", "must be at most 30 days ahead");
    else expireTime = at;
  }
  let executionTimeoutMs = TASK_DEFAULTS.executionTimeoutMs;
  if (task?.executionTimeout) {
    executionTimeoutMs = durationMs(task.executionTimeout);
    if (executionTimeoutMs < 1000 || executionTimeoutMs > DAY) v.add("task.execution_timeout", "must be between 1s and 24h");
  }
  const maxAttempts = task?.maxAttempts || TASK_DEFAULTS.maxAttempts;
  if (maxAttempts > 10) v.add("task.max_attempts", "must be at most 10");
  const priority = parsePriority(task?.priority, "task.priority", v);
  v.throwIfAny();

  return {
    id: randomUUID(),
    deviceId,
    command: command!,
    state: State.QUEUED,
    stateReason: "",
    requestId: req.requestId || undefined,
    // Same request_id + same command = the same task; the hash tells a retry from a conflicting reuse.
    requestHash: req.requestId ? commandHash(command!) : undefined,
    expireTime,
    executionTimeoutMs,
    maxAttempts,
    attempt: 0,
    createTime: now,
    updateTime: now,
    cancelPending: false,
    lateEventCount: 0,
    priority,
    creator,
  };
}

/**
 * The fingerprint stored with a request_id: the same id with the same command is a retry, with
 * another command a conflict. Rule firings use it too, so their request ids behave the same way.
 */
export function commandHash(command: Command): string {
  return createHash("sha256").update(toBinary(CommandSchema, command)).digest("base64url");
}

/** The wait timeout of a CreateTask with `wait_for`, validated. */
export function waitTimeoutMs(req: CreateTaskRequest): number {
  if (!req.waitTimeout) return TASK_DEFAULTS.waitTimeoutMs;
  const ms = durationMs(req.waitTimeout);
  const v = new Violations();
  if (ms <= 0 || ms > TASK_DEFAULTS.maxWaitTimeoutMs) v.add("wait_timeout", "must be between 1ms and 5 minutes");
  v.throwIfAny();
  return ms;
}
