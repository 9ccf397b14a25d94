import { fromJson, type JsonValue, toJson } from "@bufbuild/protobuf";
import { CommandResultSchema, CommandSchema } from "../../gen/tether/v1/command_pb.js";
import { DEFAULT_PRIORITY, type TaskRecord } from "../core/tasks/task-record.js";
import { parseStateName, State, stateName } from "../core/tasks/task-state.js";

/** A `tasks` row as postgres.js returns it. */
export type TaskRow = Record<string, unknown> & { id: string; device_id: string; seq: string | number; state: string };

/** A task as a `tasks` row, for INSERT (also used by the rule engine when a rule fires). */
export function toTaskRow(t: Omit<TaskRecord, "sequence" | "revision"> & { sequence?: number }) {
  return {
    id: t.id,
    device_id: t.deviceId,
    request_id: t.requestId ?? null,
    request_hash: t.requestHash ?? null,
    command: toJson(CommandSchema, t.command) as JsonValue,
    state: stateName(t.state),
    state_reason: t.stateReason,
    attempt: t.attempt,
    max_attempts: t.maxAttempts,
    expire_time: t.expireTime,
    execution_timeout_ms: t.executionTimeoutMs,
    progress_percent: t.progress?.percent ?? null,
    progress_message: t.progress?.message ?? null,
    result: t.result ? (toJson(CommandResultSchema, t.result) as JsonValue) : null,
    error: (t.error ?? null) as JsonValue,
    create_time: t.createTime,
    update_time: t.updateTime,
    send_time: t.sendTime ?? null,
    deliver_time: t.deliverTime ?? null,
    end_time: t.endTime ?? null,
    next_attempt_time: t.nextAttemptTime ?? null,
    deadline_time: t.deadlineTime ?? null,
    cancel_pending: t.cancelPending,
    late_event_count: t.lateEventCount,
    job_id: t.jobId ?? null,
    priority: t.priority,
    creator: t.creator,
  };
}

/** A `tasks` row as the core's record. */
export function fromRow(r: TaskRow): TaskRecord {
  const date = (v: unknown) => (v instanceof Date ? v : undefined);
  return {
    id: r.id,
    deviceId: r.device_id,
    sequence: Number(r.seq),
    command: fromJson(CommandSchema, r.command as JsonValue, { ignoreUnknownFields: true }),
    state: parseStateName(r.state) ?? State.UNSPECIFIED,
    stateReason: String(r.state_reason ?? ""),
    requestId: (r.request_id as string | null) ?? undefined,
    requestHash: (r.request_hash as string | null) ?? undefined,
    expireTime: r.expire_time as Date,
    executionTimeoutMs: Number(r.execution_timeout_ms),
    maxAttempts: Number(r.max_attempts),
    attempt: Number(r.attempt),
    progress: r.progress_percent === null ? undefined : { percent: Number(r.progress_percent), message: String(r.progress_message ?? "") },
    result: r.result ? fromJson(CommandResultSchema, r.result as JsonValue, { ignoreUnknownFields: true }) : undefined,
    error: (r.error as TaskRecord["error"] | null) ?? undefined,
    createTime: r.create_time as Date,
    updateTime: r.update_time as Date,
    sendTime: date(r.send_time),
    deliverTime: date(r.deliver_time),
    endTime: date(r.end_time),
    nextAttemptTime: date(r.next_attempt_time),
    deadlineTime: date(r.deadline_time),
    cancelPending: Boolean(r.cancel_pending),
    lateEventCount: Number(r.late_event_count),
    revision: Number(r.revision),
    jobId: (r.job_id as string | null) ?? undefined,
    priority: Number(r.priority ?? DEFAULT_PRIORITY),
    creator: String(r.creator ?? ""),
  };
}
