import { type JsonValue, toJson } from "@bufbuild/protobuf";
import { CommandResultSchema } from "../../gen/tether/v1/command_pb.js";
import type { AppliedWord } from "../core/ports/task-repository.js";
import { type DeviceWord, fastGuard } from "../core/tasks/device-word.js";
import { stateName } from "../core/tasks/task-state.js";
import type { Sql } from "./database.js";
import { fromRow, type TaskRow } from "./task-rows.js";

type Returned = TaskRow & { n: string | number; queued_work: boolean; cancel_work: boolean };

/**
 * Applies many devices' words on their tasks in one UPDATE (group commit; one statement shape
 * whatever the batch size, so one prepared statement). The state machine's guard is in the
 * statement: a row changes only if it is the device's own task and in a state the word applies
 * to (`fastGuard`), so a stale or duplicate word in the batch changes nothing while the others
 * commit; it comes back undefined and the caller takes the lifecycle's path, which records it as
 * late. The fields written are those `applyWord` writes. For each applied word, whether its
 * device has queued tasks or cancels to send, so the caller runs a dispatch pass only then.
 */
export async function applyDeviceWords(sql: Sql, words: readonly DeviceWord[], now: Date): Promise<(AppliedWord | undefined)[]> {
  if (words.length === 0) return [];
  const guards = words.map((w) => fastGuard(w.event));
  const col = <T>(f: (w: DeviceWord, i: number) => T) => words.map(f);
  const rows = await sql<Returned[]>`
    UPDATE tasks t SET
      state = v.to_state,
      update_time = ${now},
      revision = t.revision + 1,
      next_attempt_time = NULL,
      deliver_time = CASE v.type WHEN 'ack' THEN ${now} WHEN 'progress' THEN COALESCE(t.deliver_time, ${now}) ELSE t.deliver_time END,
      deadline_time = CASE v.type
        WHEN 'ack' THEN ${now}::timestamptz + t.execution_timeout_ms * interval '1 millisecond'
        WHEN 'progress' THEN COALESCE(t.deadline_time, ${now}::timestamptz + t.execution_timeout_ms * interval '1 millisecond')
        ELSE NULL END,
      end_time = CASE WHEN v.type = 'result' THEN ${now} ELSE t.end_time END,
      progress_percent = CASE WHEN v.type = 'progress' THEN v.percent ELSE t.progress_percent END,
      progress_message = CASE WHEN v.type = 'progress' THEN v.message ELSE t.progress_message END,
      result = COALESCE(v.result, t.result),
      error = COALESCE(v.error, t.error),
      state_reason = COALESCE(v.reason, t.state_reason)
    FROM unnest(${col((w) => w.taskId)}::uuid[], ${col((w) => w.deviceId)}::text[], ${col((w) => w.event.type)}::text[],
                ${col((_, i) => guards[i]!.from.map(stateName).join(","))}::text[], ${col((_, i) => stateName(guards[i]!.to))}::text[],
                ${col((w) => w.progress?.percent ?? null)}::int[], ${col((w) => w.progress?.message ?? null)}::text[],
                ${col((w) => (w.result ? (toJson(CommandResultSchema, w.result) as never) : null))}::jsonb[],
                ${col((w) => (w.error ? (w.error as unknown as JsonValue as never) : null))}::jsonb[], ${col((w) => w.stateReason ?? null)}::text[])
      WITH ORDINALITY AS v (id, device_id, type, from_states, to_state, percent, message, result, error, reason, n)
    WHERE t.id = v.id AND t.device_id = v.device_id AND t.state = ANY (string_to_array(v.from_states, ','))
    RETURNING t.*, v.n,
      EXISTS (SELECT 1 FROM tasks q WHERE q.device_id = t.device_id AND q.state = 'QUEUED') AS queued_work,
      EXISTS (SELECT 1 FROM tasks c WHERE c.device_id = t.device_id AND c.cancel_pending) AS cancel_work`;
  const out: (AppliedWord | undefined)[] = words.map(() => undefined);
  for (const r of rows) out[Number(r.n) - 1] = { task: fromRow(r), pendingWork: Boolean(r.queued_work) || Boolean(r.cancel_work) };
  return out;
}
