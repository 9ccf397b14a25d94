import type { IntakeDevice } from "../core/tasks/task-intake.js";
import { OPEN_STATES, stateName } from "../core/tasks/task-state.js";
import { deviceMetaOfRow } from "./creator-rights-query.js";
import type { Sql } from "./database.js";
import { parseModeName } from "./device-store.js";
import type { TxSql } from "./transaction.js";

const OPEN = OPEN_STATES.map(stateName);

/**
 * Locks the target devices' rows (FOR UPDATE, in id order: CreateTask, rule firings and job
 * steps all take them so, and never deadlock one another) and reads what task admission needs,
 * on the caller's transaction: two statements whatever the number of devices. The row lock
 * serialises task inserts per device, so the open-task cap holds exactly.
 *
 * The count is its own statement on purpose: under READ COMMITTED it takes a snapshot after the
 * lock was granted, so it sees the tasks the previous lock holder committed. Counted in the
 * locking statement, it would use that statement's older snapshot and miss them.
 */
export async function lockIntakeDevices(tx: Sql | TxSql, deviceIds: readonly string[]): Promise<Map<string, IntakeDevice>> {
  const out = new Map<string, IntakeDevice>();
  const ids = [...new Set(deviceIds)].sort();
  if (ids.length === 0) return out;
  // One device (every CreateTask) gets plain equality and an IN list of the open states: the
  // planner then uses the partial index of open tasks, which an array parameter hides from it.
  const one = ids.length === 1 ? ids[0]! : undefined;
  const devs = await tx`
    SELECT id, kind, labels, owner, max_pending_tasks, online, delivery_mode FROM devices
    WHERE ${one !== undefined ? tx`id = ${one}` : tx`id = ANY(${ids}::text[])`} ORDER BY id FOR UPDATE`;
  if (devs.length === 0) return out;
  const counts = await tx`
    SELECT device_id, state, count(*)::int AS n FROM tasks
    WHERE ${one !== undefined ? tx`device_id = ${one}` : tx`device_id = ANY(${devs.map((d) => String(d.id))}::text[])`} AND state IN ${tx(OPEN)}
    GROUP BY device_id, state`;
  const byState = new Map<string, Record<string, number>>();
  for (const c of counts) {
    const id = String(c.device_id);
    const m = byState.get(id) ?? {};
    m[String(c.state)] = Number(c.n);
    byState.set(id, m);
  }
  for (const d of devs) {
    const id = String(d.id);
    const n = byState.get(id) ?? {};
    const open = { queued: n.QUEUED ?? 0, sent: n.SENT ?? 0, delivered: n.DELIVERED ?? 0, running: n.RUNNING ?? 0 };
    out.set(id, {
      kind: String(d.kind),
      maxPendingTasks: Number(d.max_pending_tasks) || 0,
      openTasks: open.queued + open.sent + open.delivered + open.running,
      open,
      mode: parseModeName(String(d.delivery_mode)),
      online: Boolean(d.online),
      meta: deviceMetaOfRow(d),
    });
  }
  return out;
}
