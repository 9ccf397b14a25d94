import { AlreadyExistsError } from "../core/errors.js";
import type { ExecutionRecord, JobRecord, JobView } from "../core/jobs/job-record.js";
import type { JobRepository, NewJob, StepResult } from "../core/ports/job-repository.js";
import { taskForJob } from "../core/jobs/job-tasks.js";
import type { TaskRecord } from "../core/tasks/task-record.js";
import { OPEN_STATES, parseStateName, type State, stateName } from "../core/tasks/task-state.js";
import type { Sql } from "./database.js";
import { whereDeviceFilter } from "./device-store.js";
import { fromRow, type JobRow, toRow } from "./job-rows.js";
import { toTaskRow } from "./task-rows.js";
import { creatorRightsFor } from "./creator-rights-query.js";
import { lockIntakeDevices } from "./task-intake-sql.js";
import { createAdmission, REQUEST_ID_TAKEN } from "../core/tasks/task-intake.js";
import { type TxSql, withTransaction } from "./transaction.js";
import { auditCall, auditWith, ownAudit } from "./audit-context.js";

/** The audit log's method name of a job rollout step that changed the job. */
export const JOB_STEP_METHOD = "tether.jobs/Dispatch";

const OPEN = OPEN_STATES.map(stateName);
/** Task rows per INSERT: 25 columns × 1,000 rows stays well under PostgreSQL's 65,535 parameters. */
const INSERT_CHUNK = 1000;

/**
 * Inserts a job and its targets on the caller's transaction (CreateJob, or a job rule's firing in
 * the transaction that records its run). Undefined if the id is taken.
 */
export async function insertJob(tx: TxSql, job: NewJob, now: Date): Promise<JobView | undefined> {
  const rows = await tx<JobRow[]>`INSERT INTO jobs ${tx(toRow(tx as unknown as Sql, job))} ON CONFLICT (id) DO NOTHING RETURNING id`;
  if (rows.length === 0) return undefined;
  // The targets never pass through this process: one INSERT … SELECT, however many match.
  const t = job.target;
  const added =
    t.kind === "devices"
      ? await tx`
          INSERT INTO job_targets (job_id, device_id)
          SELECT ${job.id}, d.id FROM devices d WHERE d.id = ANY(${t.deviceIds}::text[]) AND d.kind = ${job.productKind}
          ON CONFLICT DO NOTHING`
      : await tx`
          INSERT INTO job_targets (job_id, device_id)
          SELECT ${job.id}, d.id FROM devices d WHERE ${whereDeviceFilter(tx as unknown as Sql, t.filter)}
          ON CONFLICT DO NOTHING`;
  const [row] = await tx<JobRow[]>`
    UPDATE jobs SET target_count = ${added.count}, scan_time = ${t.kind === "selector" ? now : null} WHERE id = ${job.id} RETURNING *`;
  // A new job has no executions yet: nothing to count.
  const v: JobView = { job: fromRow(row!), byState: new Map() };
  // An explicit list is echoed back once, on create (it is not stored on the job row).
  if (t.kind === "devices") v.job.target = { kind: "devices", deviceIds: t.deviceIds };
  return v;
}

/**
 * JobRepository on PostgreSQL/PGlite.
 *
 * Exactly once per (job, device), across replicas and restarts:
 * - `job_targets` has one row per (job, device) (primary key): a target can be created once, and a
 *   continuous job's re-scans add only devices not yet there (NOT EXISTS + ON CONFLICT DO NOTHING);
 * - a rollout step runs in one transaction that holds the job row lock (FOR UPDATE SKIP LOCKED:
 *   another replica skips the job rather than waiting), claims PENDING targets, inserts their tasks
 *   and marks them DISPATCHED with the task id. It commits all of that or nothing: a crash
 *   mid-step leaves the targets PENDING and no task, so they are claimed again later, once;
 * - each task carries the deterministic request id `job:{job}:{uid}` under the unique
 *   (device_id, request_id) index: a second task for the same (job, device) cannot be inserted.
 */
export function createJobStore(sql: Sql): JobRepository {
  async function countStates(db: Sql | TxSql, ids: string[]): Promise<Map<string, Map<State, number>>> {
    const out = new Map<string, Map<State, number>>(ids.map((id) => [id, new Map()]));
    if (ids.length === 0) return out;
    const rows = await db`
      SELECT job_id, state, count(*)::int AS n FROM tasks WHERE job_id = ANY(${ids}::text[]) GROUP BY job_id, state`;
    for (const r of rows) {
      const s = parseStateName(String(r.state));
      if (s !== undefined) out.get(String(r.job_id))?.set(s, Number(r.n));
    }
    return out;
  }

  async function view(db: Sql | TxSql, row: JobRow): Promise<JobView> {
    const counts = await countStates(db, [row.id]);
    return { job: fromRow(row), byState: counts.get(row.id)! };
  }

  /** Claims up to `n` pending targets in device order, creates their tasks, marks them. */
  async function dispatch(tx: TxSql, job: JobRecord, n: number, now: Date) {
    const ids = (
      await tx`
      SELECT device_id FROM job_targets WHERE job_id = ${job.id} AND state = 'PENDING' ORDER BY device_id LIMIT ${n}`
    ).map((r) => String(r.device_id));
    if (ids.length === 0) return { tasks: [] as TaskRecord[], online: [] as string[], claimed: 0, skipped: 0 };
    // Through the task intake (src/core/tasks/task-intake.ts), under the device row locks: each
    // device's pending-task cap holds exactly, as for CreateTask. The job runs with its creator's
    // rights, as of this transaction: one query for the batch.
    const devices = await lockIntakeDevices(tx, ids);
    const admission = createAdmission(devices, await creatorRightsFor(tx, [job.creator], ids));
    const marks: Array<{ device_id: string; state: string; task_id: string | null; reason: string }> = [];
    const planned = [];
    for (const id of ids) {
      const refused = admission.admit(id, job.productKind, job.creator);
      if (refused) marks.push({ device_id: id, state: "SKIPPED", task_id: null, reason: refused.message });
      else planned.push(taskForJob(job, id, now));
    }
    const tasks: TaskRecord[] = [];
    for (let i = 0; i < planned.length; i += INSERT_CHUNK) {
      const chunk = planned.slice(i, i + INSERT_CHUNK);
      const inserted = await tx`
        INSERT INTO tasks ${tx(chunk.map(toTaskRow))}
        ON CONFLICT (device_id, request_id) WHERE request_id IS NOT NULL DO NOTHING
        RETURNING id, seq, revision`;
      const byTask = new Map(chunk.map((t) => [t.id, t]));
      for (const r of inserted) tasks.push({ ...byTask.get(String(r.id))!, sequence: Number(r.seq), revision: Number(r.revision) });
    }
    const created = new Set(tasks.map((t) => t.id));
    for (const t of planned) {
      marks.push(
        created.has(t.id)
          ? { device_id: t.deviceId, state: "DISPATCHED", task_id: t.id, reason: "" }
          : { device_id: t.deviceId, state: "SKIPPED", task_id: null, reason: REQUEST_ID_TAKEN },
      );
    }
    await tx`
      UPDATE job_targets t SET state = v.state, task_id = v.task_id, reason = v.reason
      FROM jsonb_to_recordset(${tx.json(marks)}) AS v(device_id text, state text, task_id uuid, reason text)
      WHERE t.job_id = ${job.id} AND t.device_id = v.device_id`;
    const online = tasks.filter((t) => devices.get(t.deviceId)?.online).map((t) => t.deviceId);
    return { tasks, online, claimed: ids.length, skipped: marks.length - tasks.length };
  }

  return {
    async deviceKinds(ids) {
      const out = new Map<string, string>();
      if (ids.length === 0) return out;
      const rows = await sql`SELECT id, kind FROM devices WHERE id = ANY(${ids}::text[])`;
      for (const r of rows) out.set(String(r.id), String(r.kind));
      return out;
    },

    async create(job, now) {
      return withTransaction(sql, async (tx) => {
        const v = await insertJob(tx, job, now);
        if (!v) throw new AlreadyExistsError(`jobs/${job.id}`);
        auditCall(tx, `jobs/${job.id}`);
        return v;
      });
    },

    async get(id) {
      const [row] = await sql<JobRow[]>`SELECT * FROM jobs WHERE id = ${id}`;
      return row ? view(sql, row) : undefined;
    },

    async list({ before, limit }) {
      const rows = await sql<JobRow[]>`
        SELECT * FROM jobs
        WHERE ${before ? sql`(create_time, id) < (${before.createTime}, ${before.id})` : sql`true`}
        ORDER BY create_time DESC, id DESC LIMIT ${limit}`;
      const counts = await countStates(
        sql,
        rows.map((r) => r.id),
      );
      return rows.map((r) => ({ job: fromRow(r), byState: counts.get(r.id)! }));
    },

    async modify(id, now, change) {
      return withTransaction(sql, async (tx) => {
        // Waits for a rollout step in progress: the change applies to the state that step left.
        const [row] = await tx<JobRow[]>`SELECT * FROM jobs WHERE id = ${id} FOR UPDATE`;
        if (!row) return undefined;
        const job = fromRow(row);
        const c = change(job);
        let skipped = 0;
        if (c.skipPending) {
          skipped = (await tx`UPDATE job_targets SET state = 'SKIPPED', reason = ${c.skipPending} WHERE job_id = ${id} AND state = 'PENDING'`).count;
        }
        const changed = c.state !== job.state;
        const [next] = await tx<JobRow[]>`
          UPDATE jobs SET state = ${c.state}, state_reason = ${c.stateReason}, end_time = ${c.endTime ?? null},
                          rate_tokens = ${c.rateTokens}, rate_time = ${c.rateTime ?? null}, cancel_in_flight = ${c.cancelInFlight},
                          skipped_count = skipped_count + ${skipped}, update_time = ${changed ? now : job.updateTime}
          WHERE id = ${id} RETURNING *`;
        auditCall(tx);
        return view(tx, next!);
      });
    },

    async executions(jobId, { afterDeviceId, limit, targetStates, taskStates }) {
      const rows = await sql`
        SELECT jt.device_id, jt.state AS target_state, jt.reason, jt.task_id, t.state AS task_state, t.state_reason AS task_reason, t.create_time
        FROM job_targets jt LEFT JOIN tasks t ON t.id = jt.task_id
        WHERE jt.job_id = ${jobId}
          AND ${afterDeviceId !== undefined ? sql`jt.device_id > ${afterDeviceId}` : sql`true`}
          AND ${targetStates ? sql`jt.state = ANY(${targetStates}::text[])` : sql`true`}
          AND ${taskStates ? sql`t.state = ANY(${taskStates.map(stateName)}::text[])` : sql`true`}
        ORDER BY jt.device_id LIMIT ${limit}`;
      return rows.map(
        (r): ExecutionRecord => ({
          deviceId: String(r.device_id),
          targetState: r.target_state as ExecutionRecord["targetState"],
          reason: String(r.reason ?? ""),
          taskId: r.task_id ? String(r.task_id) : undefined,
          taskState: r.task_state ? parseStateName(String(r.task_state)) : undefined,
          taskReason: r.task_reason ? String(r.task_reason) : undefined,
          createTime: r.create_time instanceof Date ? r.create_time : undefined,
        }),
      );
    },

    async activeJobIds(now, limit) {
      const rows = await sql`
        SELECT id FROM jobs
        WHERE state = 'RUNNING' OR (state = 'SCHEDULED' AND (start_time IS NULL OR start_time <= ${now})) OR cancel_in_flight
        ORDER BY create_time LIMIT ${limit}`;
      return rows.map((r) => String(r.id));
    },

    async advance(id, now, decide, { rescanBefore }): Promise<StepResult | undefined> {
      return withTransaction(sql, async (tx) => {
        const [row] = await tx<JobRow[]>`SELECT * FROM jobs WHERE id = ${id} FOR UPDATE SKIP LOCKED`;
        if (!row) return undefined;
        const job = fromRow(row);
        let scanTime = job.scanTime;
        if (job.state === "RUNNING" && job.target.kind === "selector" && job.target.continuous && (!scanTime || scanTime < rescanBefore)) {
          // Continuous: devices that match now and are not targets yet become targets.
          const added = await tx`
            INSERT INTO job_targets (job_id, device_id)
            SELECT ${id}, d.id FROM devices d
            WHERE ${whereDeviceFilter(tx as unknown as Sql, job.target.filter)}
              AND NOT EXISTS (SELECT 1 FROM job_targets x WHERE x.job_id = ${id} AND x.device_id = d.id)
            ON CONFLICT DO NOTHING`;
          job.targetCount += added.count;
          scanTime = now;
        }
        const byState = (await countStates(tx, [id])).get(id)!;
        const d = decide(job, byState);
        let skipped = 0;
        if (d.skipPending) {
          skipped += (await tx`UPDATE job_targets SET state = 'SKIPPED', reason = ${d.skipPending} WHERE job_id = ${id} AND state = 'PENDING'`).count;
        }
        const r = d.dispatch > 0 ? await dispatch(tx, job, d.dispatch, now) : { tasks: [], online: [], claimed: 0, skipped: 0 };
        skipped += r.skipped;
        const changed = d.state !== job.state;
        const [next] = await tx<JobRow[]>`
          UPDATE jobs SET state = ${d.state}, state_reason = ${d.stateReason}, end_time = ${d.endTime ?? null},
                          rate_tokens = ${d.rateTokens}, rate_time = ${d.rateTime ?? null}, scan_time = ${scanTime ?? null},
                          cancel_in_flight = ${d.cancelInFlight}, target_count = ${job.targetCount},
                          dispatched_count = dispatched_count + ${r.tasks.length}, skipped_count = skipped_count + ${skipped},
                          update_time = ${changed ? now : job.updateTime}
          WHERE id = ${id} RETURNING *`;
        // A step that changed something is audited as its job, in this transaction.
        if (changed || r.tasks.length > 0 || skipped > 0) {
          const fieldPaths = [...(changed ? ["state"] : []), ...(r.tasks.length > 0 ? ["dispatched_count"] : []), ...(skipped > 0 ? ["skipped_count"] : [])];
          auditWith(tx, [ownAudit({ principal: `jobs/${id}`, method: JOB_STEP_METHOD, resource: `jobs/${id}`, time: now, fieldPaths })]);
        }
        const counts = new Map(byState);
        if (r.tasks.length > 0) counts.set(OPEN_STATES[0], (counts.get(OPEN_STATES[0]) ?? 0) + r.tasks.length);
        return { view: { job: fromRow(next!), byState: counts }, tasks: r.tasks, onlineDeviceIds: r.online, more: r.claimed > 0 && r.claimed === d.dispatch };
      });
    },

    async openTasks(jobId, limit) {
      const rows = await sql`SELECT device_id, id FROM tasks WHERE job_id = ${jobId} AND state = ANY(${OPEN}::text[]) ORDER BY seq LIMIT ${limit}`;
      return rows.map((r) => ({ deviceId: String(r.device_id), taskId: String(r.id) }));
    },

    async clearCancelInFlight(jobId) {
      await sql`UPDATE jobs SET cancel_in_flight = false WHERE id = ${jobId}`;
    },
  };
}
