import { toJson } from "@bufbuild/protobuf";
import { CommandSchema } from "../../gen/tether/v1/command_pb.js";
import { deviceName } from "../core/devices/device-name.js";
import { NotFoundError } from "../core/errors.js";
import type { CreatedTask, NewTask } from "../core/ports/task-repository.js";
import { sendAtCreate } from "../core/tasks/delivery-plan.js";
import { commandKind, createAdmission, refusalError, replayOf } from "../core/tasks/task-intake.js";
import { type TaskRecord, taskName } from "../core/tasks/task-record.js";
import { State, stateName } from "../core/tasks/task-state.js";
import type { Sql } from "./database.js";
import { lockIntakeDevices } from "./task-intake-sql.js";
import { fromRow, type TaskRow } from "./task-rows.js";
import { withTransaction } from "./transaction.js";
import { auditWith, withResource } from "./audit-context.js";

const key = (deviceId: string, requestId: string) => `${deviceId}\u0000${requestId}`;

/**
 * Creates a batch of new tasks (CreateTask calls gathered by the group-commit batcher) in one
 * transaction of five statements whatever its size: lock the target devices and count their
 * open tasks, look up repeated request ids, one INSERT … SELECT FROM unnest (one statement shape
 * for any batch size, so one prepared statement), commit. Each task is decided on its own, in
 * order, exactly as a lone CreateTask: a repeated request id answers with its task, a device
 * that is gone or at its cap refuses only that task. A task that may be sent at once (see
 * `sendAtCreate`) is created SENT, its first attempt claimed under the same device lock a
 * dispatch pass would take; the caller publishes it after the commit.
 */
export async function createTasks(sql: Sql, tasks: readonly NewTask[], clockNow: () => Date): Promise<(CreatedTask | Error)[]> {
  return withTransaction(sql, async (tx) => {
    const devices = await lockIntakeDevices(
      tx,
      tasks.map((t) => t.deviceId),
    );
    const out: (CreatedTask | Error | undefined)[] = tasks.map(() => undefined);

    // A repeated request id answers with its task before any cap: a retry is not a new task.
    const keyed = tasks.filter((t) => t.requestId !== undefined && devices.has(t.deviceId));
    const existing = new Map<string, TaskRecord>();
    if (keyed.length > 0) {
      const rows = await tx<TaskRow[]>`
        SELECT t.* FROM tasks t
        JOIN unnest(${keyed.map((t) => t.deviceId)}::text[], ${keyed.map((t) => t.requestId!)}::text[]) AS k (device_id, request_id)
          ON t.device_id = k.device_id AND t.request_id = k.request_id`;
      for (const r of rows) existing.set(key(r.device_id, String(r.request_id)), fromRow(r));
    }

    const admission = createAdmission(devices);
    /** Admitted tasks per device, by index into `tasks`. */
    const admitted = new Map<string, number[]>();
    /** Later tasks of this batch repeating the request id of an earlier one: index → the earlier index. */
    const repeats = new Map<number, number>();
    const firstOfKey = new Map<string, number>();
    for (const [i, t] of tasks.entries()) {
      try {
        // Only new tasks as CreateTask builds them: the INSERT below writes a fresh task's fields.
        if (t.state !== State.QUEUED || t.attempt !== 0) throw new Error(`task ${t.id} is not new`);
        if (!devices.has(t.deviceId)) throw new NotFoundError(deviceName(t.deviceId));
        if (t.requestId !== undefined) {
          const k = key(t.deviceId, t.requestId);
          const before = existing.get(k);
          if (before) {
            out[i] = { task: replayOf(before, t.requestId, t.requestHash), created: false };
            continue;
          }
          const first = firstOfKey.get(k);
          if (first !== undefined) {
            repeats.set(i, first);
            continue;
          }
          firstOfKey.set(k, i);
        }
        const refused = admission.admit(t.deviceId, commandKind(t.command));
        if (refused) throw refusalError(t.deviceId, refused);
        const ofDevice = admitted.get(t.deviceId);
        if (ofDevice) ofDevice.push(i);
        else admitted.set(t.deviceId, [i]);
      } catch (err) {
        out[i] = err as Error;
      }
    }

    // Read after the locks were granted: a send time is never earlier than the end of the task
    // whose completion freed the slot (as in a dispatch pass).
    const now = clockNow();
    const rows: { t: NewTask; sent: boolean }[] = [];
    for (const [deviceId, indexes] of admitted) {
      const d = devices.get(deviceId)!;
      const { send, order } = sendAtCreate(
        { online: d.online, mode: d.mode, ...d.open },
        indexes.map((i) => tasks[i]!.priority),
      );
      // In send order: the sequence (creation order) and send_seq (send order) follow the rows.
      for (const j of order) rows.push({ t: tasks[indexes[j]!]!, sent: send[j]! });
    }
    if (rows.length > 0) {
      const col = <T>(f: (r: { t: NewTask; sent: boolean }) => T) => rows.map(f);
      // (A task is sent at creation when its state is SENT: postgres.js sends no boolean arrays.)
      const inserted = await tx<TaskRow[]>`
        INSERT INTO tasks (id, device_id, request_id, request_hash, command, state, state_reason, attempt, max_attempts,
                           expire_time, execution_timeout_ms, create_time, update_time, send_time, send_seq, job_id, priority, creator)
        SELECT u.id, u.device_id, u.request_id, u.request_hash, u.command, u.state, '', CASE WHEN (u.state = 'SENT') THEN 1 ELSE 0 END, u.max_attempts,
               u.expire_time, u.execution_timeout_ms, u.create_time,
               CASE WHEN (u.state = 'SENT') THEN ${now} ELSE u.create_time END, CASE WHEN (u.state = 'SENT') THEN ${now}::timestamptz END,
               CASE WHEN (u.state = 'SENT') THEN nextval('task_send_seq') END, u.job_id, u.priority, u.creator
        FROM unnest(${col((r) => r.t.id)}::uuid[], ${col((r) => r.t.deviceId)}::text[], ${col((r) => r.t.requestId ?? null)}::text[],
                    ${col((r) => r.t.requestHash ?? null)}::text[], ${col((r) => toJson(CommandSchema, r.t.command) as never)}::jsonb[],
                    ${col((r) => stateName(r.sent ? State.SENT : State.QUEUED))}::text[],
                    ${col((r) => r.t.maxAttempts)}::int[], ${col((r) => r.t.expireTime.toISOString())}::timestamptz[],
                    ${col((r) => r.t.executionTimeoutMs)}::int[], ${col((r) => r.t.createTime.toISOString())}::timestamptz[],
                    ${col((r) => r.t.jobId ?? null)}::text[], ${col((r) => r.t.priority)}::smallint[], ${col((r) => r.t.creator)}::text[])
          WITH ORDINALITY AS u (id, device_id, request_id, request_hash, command, state, max_attempts,
                                expire_time, execution_timeout_ms, create_time, job_id, priority, creator, n)
        ORDER BY u.n
        RETURNING *`;
      const byId = new Map(inserted.map((r) => [r.id, fromRow(r)]));
      for (const [i, t] of tasks.entries()) {
        const task = byId.get(t.id);
        if (task) out[i] = { task, created: true };
      }
      // Each created task's own caller, from its item (never the context of whoever scheduled
      // this flush): one more INSERT for the whole batch, before the COMMIT.
      auditWith(
        tx,
        rows.map((r) => r.t.audit && withResource(r.t.audit, taskName(r.t.deviceId, r.t.id))),
      );
    }
    for (const [i, first] of repeats) {
      const earlier = out[first];
      const t = tasks[i]!;
      try {
        // The earlier task of the same request id was refused: so is its repeat, with the same error.
        out[i] = earlier === undefined || earlier instanceof Error ? earlier : { task: replayOf(earlier.task, t.requestId!, t.requestHash), created: false };
      } catch (err) {
        out[i] = err as Error;
      }
    }
    return out.map((o) => o ?? new Error("a task of the batch was left undecided"));
  });
}
