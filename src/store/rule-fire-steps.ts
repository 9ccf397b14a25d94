import { deviceName } from "../core/devices/device-name.js";
import { productByCase } from "../core/products/index.js";
import type { RuleRecord, RuleRunRecord, RunState, RunTarget } from "../core/rules/rule-record.js";
import { taskForRule } from "../core/rules/rule-tasks.js";
import type { TaskRecord } from "../core/tasks/task-record.js";
import type { NewTask } from "../core/ports/task-repository.js";
import { OPEN_STATES, stateName } from "../core/tasks/task-state.js";
import type { Sql } from "./database.js";
import { fromRunRow, type RunRow } from "./rule-rows.js";
import { toTaskRow } from "./task-store.js";
import { creatorRightsFor, deviceMetaOfRow } from "./creator-rights-query.js";
import type { DeviceMeta } from "../core/access/selector.js";

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

const OPEN = OPEN_STATES.map(stateName);
const DEFAULT_MAX_PENDING = 100;
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
    else if (r.target.kind === "job") continue; // its job resolves its own targets
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
  return out;
}

/**
 * Builds each run's tasks under the target devices' row locks (taken in id order, so concurrent
 * schedulers never deadlock), honouring each device's pending-task cap exactly as CreateTask does,
 * and only on devices where the rule's creator still has the operator role (checked here, on the
 * transaction that inserts the tasks; one rights query for the whole batch).
 */
export async function planTasks(
  tx: Sql,
  items: Array<{ rule: RuleRecord; occurrence: Date; deviceIds: string[] }>,
  now: Date,
): Promise<Map<string, { targets: RunTarget[]; tasks: NewTask[] }>> {
  const ids = [...new Set(items.flatMap((i) => i.deviceIds))].sort();
  const devices = new Map<string, { kind: string; max: number; open: number; meta: DeviceMeta }>();
  if (ids.length > 0) {
    const devs = await tx`SELECT id, kind, labels, owner, max_pending_tasks FROM devices WHERE id = ANY(${ids}::text[]) ORDER BY id FOR UPDATE`;
    const counts = await tx`
      SELECT device_id, count(*)::int AS n FROM tasks
      WHERE device_id = ANY(${ids}::text[]) AND state = ANY(${OPEN}::text[]) GROUP BY device_id`;
    const open = new Map(counts.map((c) => [String(c.device_id), Number(c.n)]));
    for (const d of devs) devices.set(String(d.id), { kind: String(d.kind), max: Number(d.max_pending_tasks) || DEFAULT_MAX_PENDING, open: open.get(String(d.id)) ?? 0, meta: deviceMetaOfRow(d) });
  }
  const lostRight = ids.length > 0 ? await creatorRightsFor(tx, items.map((i) => i.rule.creator), ids) : () => undefined;
  const out = new Map<string, { targets: RunTarget[]; tasks: NewTask[] }>();
  for (const { rule, occurrence, deviceIds } of items) {
    const targets: RunTarget[] = [];
    const tasks: NewTask[] = [];
    const kind = productByCase(rule.command.kind.case!).kindName;
    for (const deviceId of deviceIds) {
      const dev = devices.get(deviceId);
      // In this order: the creator's right comes before the cap, so a run says why it may not
      // command a device rather than that the device is busy.
      const error = !dev
        ? `${deviceName(deviceId)} does not exist`
        : dev.kind !== kind
          ? `${deviceName(deviceId)} is a ${dev.kind}; the rule's ${kind} command does not apply to it`
          : (lostRight(rule.creator, dev.meta) ??
            (dev.open >= dev.max ? `${deviceName(deviceId)} already has ${dev.open} open tasks (its delivery_policy.max_pending_tasks is ${dev.max})` : undefined));
      if (error) {
        targets.push({ deviceId, error });
        continue;
      }
      const task = taskForRule(rule, deviceId, occurrence, now);
      dev!.open++;
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
    inserted.push(...(await tx<RunRow[]>`
      INSERT INTO rule_runs ${tx(rows.slice(i, i + CHUNK))}
      ON CONFLICT (rule_id, subject, occurrence_time) DO NOTHING RETURNING *`));
  }
  const isNew = new Set(inserted.map((r) => `${r.rule_id}\u0000${r.subject}`));
  const tasks = await insertTasks(tx, pending.filter((p) => isNew.has(`${p.rule.id}\u0000${p.subject}`)).flatMap((p) => p.tasks));
  const runs = inserted.map(fromRunRow);
  // A task whose request id was taken (only by a CreateTask that guessed it): say so on its run.
  const created = new Set(tasks.map((t) => t.id));
  for (const run of runs) {
    if (run.targets.every((t) => !t.taskId || created.has(t.taskId))) continue;
    run.targets = run.targets.map((t) => (t.taskId && !created.has(t.taskId) ? { deviceId: t.deviceId, error: "a task with this run's request id already exists" } : t));
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
