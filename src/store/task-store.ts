import { deviceName } from "../core/devices/device-name.js";
import { NotFoundError } from "../core/errors.js";
import { commandKind, createAdmission, refusalError, replayOf } from "../core/tasks/task-intake.js";
import type { TaskRepository } from "../core/ports/task-repository.js";
import { type TaskRecord, taskName } from "../core/tasks/task-record.js";
import { OPEN_STATES, stateName } from "../core/tasks/task-state.js";
import type { Sql } from "./database.js";
import { parseModeName, whereScope } from "./device-store.js";
import { createTasks } from "./task-create-sql.js";
import { applyDeviceWords } from "./task-events-sql.js";
import { lockIntakeDevices } from "./task-intake-sql.js";
import { fromRow, type TaskRow, toTaskRow } from "./task-rows.js";
import { auditedChange, withTransaction } from "./transaction.js";
import { auditWith, outsideAudit, pendingAudit, withResource } from "./audit-context.js";

const OPEN = OPEN_STATES.map(stateName);

type Row = TaskRow;

/** Highest priority first, then creation order: the order one claim sends its tasks in. */
const bySendOrder = (a: TaskRecord, b: TaskRecord) => b.priority - a.priority || a.sequence - b.sequence;

/** TaskRepository on PostgreSQL/PGlite. */
export function createTaskStore(sql: Sql): TaskRepository {
  return {
    async create(t) {
      return withTransaction(sql, async (tx) => {
        const devices = await lockIntakeDevices(tx, [t.deviceId]);
        if (!devices.has(t.deviceId)) throw new NotFoundError(deviceName(t.deviceId));
        // A repeated request id answers with its task before any cap: a retry is not a new task.
        if (t.requestId !== undefined) {
          const [existing] = await tx<Row[]>`SELECT * FROM tasks WHERE device_id = ${t.deviceId} AND request_id = ${t.requestId}`;
          if (existing) return { task: replayOf(fromRow(existing), t.requestId, t.requestHash), created: false };
        }
        const refused = createAdmission(devices).admit(t.deviceId, commandKind(t.command));
        if (refused) throw refusalError(t.deviceId, refused);
        const [row] = await tx<Row[]>`INSERT INTO tasks ${tx(toTaskRow(t))} RETURNING *`;
        const audit = t.audit ?? pendingAudit();
        if (audit) auditWith(tx, [withResource(audit, taskName(t.deviceId, t.id))]);
        return { task: fromRow(row!), created: true };
      });
    },

    // A flush runs in the async context of whichever caller scheduled it; each task carries its own caller's audit event instead.
    createMany: (tasks, now) => outsideAudit(() => createTasks(sql, tasks, now)),
    applyWords: (words, now) => applyDeviceWords(sql, words, now),

    async get(id) {
      if (!/^[0-9a-f-]{36}$/i.test(id)) return undefined;
      const [row] = await sql<Row[]>`SELECT * FROM tasks WHERE id = ${id}`;
      return row ? fromRow(row) : undefined;
    },

    async list({ deviceId, states, scope, beforeSequence, limit }) {
      const rows = await sql<Row[]>`
        SELECT * FROM tasks
        WHERE ${deviceId !== undefined ? sql`device_id = ${deviceId}` : sql`true`}
          AND ${scope && !scope.all ? sql`device_id IN (SELECT id FROM devices WHERE ${whereScope(sql, scope)})` : sql`true`}
          AND ${states && states.length > 0 ? sql`state IN ${sql(states.map(stateName))}` : sql`true`}
          AND ${beforeSequence !== undefined ? sql`seq < ${beforeSequence}` : sql`true`}
        ORDER BY seq DESC LIMIT ${limit}`;
      return rows.map(fromRow);
    },

    async update(next) {
      // Identity, command and counters maintained elsewhere (late events) are never rewritten here.
      const {
        id,
        device_id: _d,
        create_time: _c,
        command: _cmd,
        request_id: _r,
        request_hash: _h,
        late_event_count: _l,
        job_id: _j,
        creator: _cr,
        ...fields
      } = toTaskRow(next);
      const [row] = await auditedChange(
        sql,
        (q) => q<Row[]>`
        UPDATE tasks SET ${q(fields)}, revision = revision + 1
        WHERE id = ${id} AND revision = ${next.revision}
        RETURNING *`,
        { changed: (r) => r.length > 0 },
      );
      return row ? fromRow(row) : undefined;
    },

    async recordLate(taskId, event, taskState, detail, now) {
      await withTransaction(sql, async (tx) => {
        await tx`INSERT INTO task_late_events (task_id, time, event, task_state, detail) VALUES (${taskId}, ${now}, ${event}, ${stateName(taskState)}, ${detail})`;
        await tx`UPDATE tasks SET late_event_count = late_event_count + 1 WHERE id = ${taskId}`;
      });
    },

    async claimForSend(deviceId, clockNow, plan) {
      return withTransaction(sql, async (tx) => {
        // SKIP LOCKED: if another replica is dispatching this device right now, it will send these tasks.
        const [dev] = await tx`SELECT online, delivery_mode FROM devices WHERE id = ${deviceId} FOR UPDATE SKIP LOCKED`;
        if (!dev) return [];
        const counts =
          await tx`SELECT state, count(*)::int AS n FROM tasks WHERE device_id = ${deviceId} AND state IN ('SENT', 'DELIVERED', 'RUNNING') GROUP BY state`;
        const n = (s: string) => Number(counts.find((c) => c.state === s)?.n ?? 0);
        const limit = plan({
          online: Boolean(dev.online),
          mode: parseModeName(String(dev.delivery_mode)),
          sent: n("SENT"),
          delivered: n("DELIVERED"),
          running: n("RUNNING"),
        });
        if (limit <= 0) return [];
        const now = clockNow();
        // Highest priority first, oldest first within one; send_seq numbers them in that order
        // (the outer select draws from the sequence in the order of the sorted inner one).
        const rows = await tx<Row[]>`
          UPDATE tasks SET state = 'SENT', attempt = attempt + 1, send_time = ${now}, update_time = ${now},
                           next_attempt_time = NULL, revision = revision + 1, send_seq = q.send_seq
          FROM (
            SELECT id, nextval('task_send_seq') AS send_seq FROM (
              SELECT id FROM tasks
              WHERE device_id = ${deviceId} AND state = 'QUEUED' AND expire_time > ${now}
                AND (next_attempt_time IS NULL OR next_attempt_time <= ${now})
              ORDER BY priority DESC, seq LIMIT ${limit}) due) q
          WHERE tasks.id = q.id
          RETURNING tasks.*`;
        return rows.map(fromRow).sort(bySendOrder);
      });
    },

    async openTasks(deviceId) {
      // What went out, in the order it went out (a priority never reorders that), then the queue.
      const rows = await sql<Row[]>`
        SELECT * FROM tasks WHERE device_id = ${deviceId} AND state IN ${sql(OPEN)}
        ORDER BY state = 'QUEUED', CASE WHEN state <> 'QUEUED' THEN send_seq END NULLS FIRST, priority DESC, seq`;
      return rows.map(fromRow);
    },

    async dueTimers(now, limit) {
      const rows = await sql<Row[]>`
        (SELECT * FROM tasks WHERE state IN ('QUEUED', 'SENT') AND expire_time <= ${now} ORDER BY expire_time LIMIT ${limit})
        UNION ALL
        (SELECT * FROM tasks WHERE state IN ('DELIVERED', 'RUNNING') AND deadline_time <= ${now} ORDER BY deadline_time LIMIT ${limit})`;
      return rows.map(fromRow);
    },

    async unacknowledged(sentBefore, limit) {
      const rows = await sql<Row[]>`
        SELECT t.* FROM tasks t JOIN devices d ON d.id = t.device_id
        WHERE t.state = 'SENT' AND t.send_time < ${sentBefore} AND d.online
        ORDER BY t.seq LIMIT ${limit}`;
      return rows.map(fromRow);
    },

    async devicesWithDueTasks(now, limit) {
      const rows = await sql`
        SELECT DISTINCT t.device_id FROM tasks t JOIN devices d ON d.id = t.device_id
        WHERE t.state = 'QUEUED' AND d.online AND t.expire_time > ${now}
          AND (t.next_attempt_time IS NULL OR t.next_attempt_time <= ${now})
        LIMIT ${limit}`;
      return rows.map((r) => String(r.device_id));
    },

    async pendingWork(deviceId) {
      // Both branches use partial indexes (tasks_open, tasks_cancel_pending): no transaction, no lock.
      const [row] = await sql`
        SELECT EXISTS (SELECT 1 FROM tasks WHERE device_id = ${deviceId} AND state = 'QUEUED') AS queued,
               EXISTS (SELECT 1 FROM tasks WHERE device_id = ${deviceId} AND cancel_pending) AS cancels`;
      return { queued: Boolean(row?.queued), cancels: Boolean(row?.cancels) };
    },

    async pendingCancels(deviceId) {
      const rows = await sql<Row[]>`SELECT * FROM tasks WHERE device_id = ${deviceId} AND cancel_pending ORDER BY seq`;
      return rows.map(fromRow);
    },

    async clearCancelPending(taskId) {
      await sql`UPDATE tasks SET cancel_pending = false WHERE id = ${taskId}`;
    },
  };
}
