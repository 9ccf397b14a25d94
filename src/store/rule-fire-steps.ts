import { whereDeviceFilter } from "./device-store.js";
import type { RuleRecord, RuleRunRecord, RunState, RunTarget } from "../core/rules/rule-record.js";
import { taskForRule } from "../core/rules/rule-tasks.js";
import type { TaskRecord } from "../core/tasks/task-record.js";
import type { NewTask } from "../core/ports/task-repository.js";
import { commandKind, createAdmission, REQUEST_ID_TAKEN } from "../core/tasks/task-intake.js";
import type { Sql } from "./database.js";
import { fromRunRow, type RunRow } from "./rule-rows.js";
import { toTaskRow } from "./task-rows.js";
import { creatorRightsFor } from "./creator-rights-query.js";
import { lockIntakeDevices } from "./task-intake-sql.js";
import { auditWith, ownAudit } from "./audit-context.js";

/** The audit log's method name of a rule firing (scheduled or on an event). */
export const RULE_FIRE_METHOD = "tether.rules/Fire";

// The SQL steps of firing rules, shared by scheduled and event firings. Each runs on the
// connection of the caller's transaction (`withTransaction`), never on the pool.

/** A run about to be recorded, with the tasks it creates if its row is new. */
export interface PendingRun {
  rule: RuleRecord;
  subject: string;
  occurrence: Date;
  state: RunState;
  reason: string;
  missed: number;
  value?: number;
  targets: RunTarget[];
  tasks: NewTask[];
  /** Job rules: the job created with the run (on the same transaction). */
  jobId?: string;
}

/** Rows per INSERT: PostgreSQL allows 65,535 parameters per statement. */
const CHUNK = 2000;

/**
 * The devices each rule addresses now: its device, or every device of the selector's kind with
 * all its labels (one query for all selectors). `only` restricts the answer to those devices.
 */
export async function resolveTargets(db: Sql, rules: RuleRecord[], only?: string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  const selectors: Array<{ rule_id: string; kind: string; labels: Record<string, string> }> = [];
  for (const r of rules) {
    if (r.target.kind === "device") out.set(r.id, only && !only.includes(r.target.deviceId) ? [] : [r.target.deviceId]);
    else if (r.target.kind === "job")
      continue; // its job resolves its own targets
    else selectors.push({ rule_id: r.id, kind: r.target.productKind, labels: r.target.labels });
  }
  if (selectors.length === 0) return out;
  const rows = await db`
    SELECT s.rule_id, d.id FROM jsonb_to_recordset(${db.json(selectors)}) AS s(rule_id text, kind text, labels jsonb)
    JOIN devices d ON d.kind = s.kind AND d.labels @> s.labels
    ${only ? db`WHERE d.id = ANY(${only}::text[])` : db``}
    ORDER BY s.rule_id, d.id`;
  for (const s of selectors) out.set(s.rule_id, []);
  for (const r of rows) out.get(String(r.rule_id))!.push(String(r.id));
  // Selectors with a fleet query: one more query each (rules with filters are few; their filters differ).
  for (const r of rules) {
    if (r.target.kind !== "selector" || r.target.filter.type === "true") continue;
    const matched = out.get(r.id)!;
    if (matched.length === 0) continue;
    const kept = await db<{ id: string }[]>`
      SELECT id FROM devices WHERE id = ANY(${matched}::text[]) AND ${whereDeviceFilter(db, r.target.filter)} ORDER BY id`;
    out.set(
      r.id,
      kept.map((k) => String(k.id)),
    );
  }
  return out;
}

/**
 * Builds each run's tasks through the task intake (src/core/tasks/task-intake.ts) under the
 * target devices' row locks: each device's pending-task cap holds exactly as for CreateTask, and
 * tasks go only to devices where the rule's creator still has the operator role (checked here, on
 * the transaction that inserts the tasks; one rights query for the whole batch).
 */
export async function planTasks(
  tx: Sql,
  items: Array<{ rule: RuleRecord; occurrence: Date; deviceIds: string[] }>,
  now: Date,
): Promise<Map<string, { targets: RunTarget[]; tasks: NewTask[] }>> {
  const ids = [...new Set(items.flatMap((i) => i.deviceIds))];
  const devices = await lockIntakeDevices(tx, ids);
  const lostRight =
    ids.length > 0
      ? await creatorRightsFor(
          tx,
          items.map((i) => i.rule.creator),
          ids,
        )
      : undefined;
  const admission = createAdmission(devices, lostRight);
  const out = new Map<string, { targets: RunTarget[]; tasks: NewTask[] }>();
  for (const { rule, occurrence, deviceIds } of items) {
    const targets: RunTarget[] = [];
    const tasks: NewTask[] = [];
    const kind = commandKind(rule.command);
    for (const deviceId of deviceIds) {
      const refused = admission.admit(deviceId, kind, rule.creator);
      if (refused) {
        targets.push({ deviceId, error: refused.message });
        continue;
      }
      const task = taskForRule(rule, deviceId, occurrence, now);
      tasks.push(task);
      targets.push({ deviceId, taskId: task.id });
    }
    out.set(rule.id, { targets, tasks });
  }
  return out;
}

/**
 * Inserts the run rows (ON CONFLICT DO NOTHING: a conflict means the occurrence was fired before,
 * by anyone) and then only the tasks of the runs that are new. Returns what was recorded.
 */
export async function recordRuns(tx: Sql, pending: PendingRun[], now: Date): Promise<{ runs: RuleRunRecord[]; tasks: TaskRecord[] }> {
  if (pending.length === 0) return { runs: [], tasks: [] };
  const rows = pending.map((p) => ({
    rule_id: p.rule.id,
    subject: p.subject,
    occurrence_time: p.occurrence,
    fire_time: now,
    state: p.state,
    state_reason: p.reason,
    missed_occurrences: p.missed,
    trigger_value: p.value ?? null,
    targets: tx.json(p.targets.map((t) => ({ device: t.deviceId, task: t.taskId ?? null, error: t.error ?? null }))),
    job_id: p.jobId ?? null,
  }));
  const inserted: RunRow[] = [];
  for (let i = 0; i < rows.length; i += CHUNK) {
    inserted.push(
      ...(await tx<RunRow[]>`
      INSERT INTO rule_runs ${tx(rows.slice(i, i + CHUNK))}
      ON CONFLICT (rule_id, subject, occurrence_time) DO NOTHING RETURNING *`),
    );
  }
  const isNew = new Set(inserted.map((r) => `${r.rule_id}\u0000${r.subject}`));
  const tasks = await insertTasks(
    tx,
    pending.filter((p) => isNew.has(`${p.rule.id}\u0000${p.subject}`)).flatMap((p) => p.tasks),
  );
  const runs = inserted.map(fromRunRow);
  // Each firing is audited as its rule, in this transaction; the tasks name it as their creator.
  const rules = new Map(pending.map((p) => [p.rule.id, p.rule]));
  auditWith(
    tx,
    runs.map((run) => {
      const rule = rules.get(run.ruleId)!;
      return ownAudit({
        principal: `rules/${rule.id}`,
        method: RULE_FIRE_METHOD,
        resource: `rules/${rule.id}`,
        time: now,
        deviceId: rule.target.kind === "device" ? rule.target.deviceId : undefined,
      });
    }),
  );
  // A task whose request id was taken (only by a CreateTask that guessed it): say so on its run.
  const created = new Set(tasks.map((t) => t.id));
  for (const run of runs) {
    if (run.targets.every((t) => !t.taskId || created.has(t.taskId))) continue;
    run.targets = run.targets.map((t) => (t.taskId && !created.has(t.taskId) ? { deviceId: t.deviceId, error: REQUEST_ID_TAKEN } : t));
    await tx`UPDATE rule_runs SET targets = ${tx.json(run.targets.map((t) => ({ device: t.deviceId, task: t.taskId ?? null, error: t.error ?? null })))} WHERE id = ${run.id}`;
  }
  return { runs, tasks };
}

/** Inserts new QUEUED tasks with the task store's row mapping; request-id clashes are skipped. */
async function insertTasks(tx: Sql, tasks: NewTask[]): Promise<TaskRecord[]> {
  const out: TaskRecord[] = [];
  for (let i = 0; i < tasks.length; i += CHUNK) {
    const chunk = tasks.slice(i, i + CHUNK);
    const rows = chunk.map(toTaskRow);
    const inserted = await tx`
      INSERT INTO tasks ${tx(rows)}
      ON CONFLICT (device_id, request_id) WHERE request_id IS NOT NULL DO NOTHING
      RETURNING id, seq, revision`;
    const byId = new Map(chunk.map((t) => [t.id, t]));
    for (const r of inserted) out.push({ ...byId.get(String(r.id))!, sequence: Number(r.seq), revision: Number(r.revision) });
  }
  return out;
}
