import { fromJson, type JsonValue, toJson } from "@bufbuild/protobuf";
import { CommandSchema } from "../../gen/tether/v1/command_pb.js";
import { allOf, type DeviceFilter } from "../core/devices/device-filter.js";
import type { JobRecord, JobState } from "../core/jobs/job-record.js";
import { DEFAULT_PRIORITY } from "../core/tasks/task-record.js";
import type { NewJob } from "../core/ports/job-repository.js";
import type { Sql } from "./database.js";

// How jobs look in PostgreSQL, and the mapping to and from the core's records.

export interface JobRow {
  id: string;
  uid: string;
  display_name: string;
  command: JsonValue;
  product_kind: string;
  target_kind: string;
  selector_filter: string | null;
  /** The parsed filter (kind included); rows written before filters had OR hold a LegacyFilter. */
  selector: DeviceFilter | LegacyFilter | null;
  continuous: boolean;
  max_per_minute: number;
  exp_base_per_minute: number | null;
  exp_factor: number | null;
  exp_step: number | null;
  abort_percent: number | null;
  abort_min_finished: number | null;
  abort_cancel: boolean;
  execution_timeout_ms: number;
  max_attempts: number;
  task_ttl_ms: string | number;
  task_priority: number;
  start_time: Date | null;
  state: string;
  state_reason: string;
  target_count: number;
  dispatched_count: number;
  skipped_count: number;
  rate_tokens: number;
  rate_time: Date | null;
  scan_time: Date | null;
  cancel_in_flight: boolean;
  create_time: Date;
  update_time: Date;
  end_time: Date | null;
  creator: string;
}

export function toRow(sql: Sql, j: NewJob) {
  const t = j.target;
  const e = j.rollout.exponential;
  return {
    id: j.id,
    uid: j.uid,
    display_name: j.displayName,
    command: sql.json(toJson(CommandSchema, j.command) as JsonValue),
    product_kind: j.productKind,
    target_kind: t.kind,
    selector_filter: t.kind === "selector" ? t.filterText : null,
    selector: t.kind === "selector" ? sql.json(t.filter as unknown as JsonValue) : null,
    continuous: t.kind === "selector" && t.continuous,
    max_per_minute: j.rollout.maxPerMinute,
    exp_base_per_minute: e?.basePerMinute ?? null,
    exp_factor: e?.factor ?? null,
    exp_step: e?.step ?? null,
    abort_percent: j.abort?.failurePercent ?? null,
    abort_min_finished: j.abort?.minFinished ?? null,
    abort_cancel: j.abort?.cancelInFlight ?? false,
    execution_timeout_ms: j.executionTimeoutMs,
    max_attempts: j.maxAttempts,
    task_ttl_ms: j.taskTtlMs,
    task_priority: j.taskPriority,
    start_time: j.startTime ?? null,
    state: j.state,
    state_reason: j.stateReason,
    rate_tokens: j.rateTokens,
    rate_time: j.rateTime ?? null,
    cancel_in_flight: j.cancelInFlight,
    create_time: j.createTime,
    update_time: j.updateTime,
    creator: j.creator,
  };
}

export function fromRow(r: JobRow): JobRecord {
  return {
    id: r.id,
    uid: r.uid,
    displayName: r.display_name,
    command: fromJson(CommandSchema, r.command, { ignoreUnknownFields: true }),
    productKind: r.product_kind,
    target:
      r.target_kind === "selector"
        ? { kind: "selector", filterText: r.selector_filter ?? "", filter: selectorOf(r.selector), continuous: r.continuous }
        : { kind: "devices", deviceIds: [] },
    rollout: {
      maxPerMinute: r.max_per_minute,
      exponential:
        r.exp_base_per_minute === null ? undefined : { basePerMinute: r.exp_base_per_minute, factor: Number(r.exp_factor), step: Number(r.exp_step) },
    },
    abort:
      r.abort_percent === null ? undefined : { failurePercent: r.abort_percent, minFinished: Number(r.abort_min_finished), cancelInFlight: r.abort_cancel },
    executionTimeoutMs: r.execution_timeout_ms,
    maxAttempts: r.max_attempts,
    taskTtlMs: Number(r.task_ttl_ms),
    taskPriority: Number(r.task_priority ?? DEFAULT_PRIORITY),
    startTime: r.start_time ?? undefined,
    state: r.state as JobState,
    stateReason: r.state_reason,
    targetCount: r.target_count,
    dispatchedCount: r.dispatched_count,
    skippedCount: r.skipped_count,
    rateTokens: r.rate_tokens,
    rateTime: r.rate_time ?? undefined,
    scanTime: r.scan_time ?? undefined,
    cancelInFlight: r.cancel_in_flight,
    createTime: r.create_time,
    updateTime: r.update_time,
    endTime: r.end_time ?? undefined,
    creator: r.creator,
  };
}

/** The flat conjunction jobs stored before migration 1732300000024 (all of which must hold). */
interface LegacyFilter {
  id?: string;
  kind?: string;
  owner?: string;
  online?: boolean;
  labels: Array<{ key: string; op: "=" | "!=" | "present"; value?: string }>;
}

/** A stored selector as a filter: a legacy conjunction is rewritten term for term. */
function selectorOf(s: DeviceFilter | LegacyFilter | null): DeviceFilter {
  if (!s) return { type: "true" };
  if ("type" in s) return s;
  const parts: DeviceFilter[] = [];
  if (s.id !== undefined) parts.push({ type: "id", op: "=", value: s.id });
  if (s.kind !== undefined) parts.push({ type: "text", field: "kind", op: "=", value: s.kind });
  if (s.owner !== undefined) parts.push({ type: "text", field: "owner", op: "=", value: s.owner });
  if (s.online !== undefined) parts.push({ type: "online", op: "=", value: s.online });
  for (const c of s.labels ?? []) {
    parts.push(c.op === "present" ? { type: "label", key: c.key, op: "has" } : { type: "label", key: c.key, op: c.op, value: c.value ?? "" });
  }
  return allOf(...parts);
}
