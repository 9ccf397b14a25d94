import { randomUUID } from "node:crypto";
import { notifies } from "../core/alarms/alarm-policy.js";
import { type AlarmChange, alarmVersion } from "../core/alarms/alarm-record.js";
import { ONLINE_METRIC } from "../core/alarms/alarm-spec.js";
import type { AlarmNotifications } from "../core/ports/alarm-notifications.js";
import type { AlarmQuery, AlarmRepository, AlarmRuleView } from "../core/ports/alarm-repository.js";
import type { RuleRecord } from "../core/rules/rule-record.js";
import { type AlarmRow, fromAlarmRow } from "./alarm-rows.js";
import { auditCall } from "./audit-context.js";
import type { Sql } from "./database.js";
import { whereScope } from "./device-store.js";
import { resolveTargets } from "./rule-fire-steps.js";
import { fromRow, type RuleRow } from "./rule-rows.js";
import { type TxSql, withTransaction } from "./transaction.js";

const changes = (type: AlarmChange["type"], rows: AlarmRow[]): AlarmChange[] => rows.map((r) => ({ type, alarm: fromAlarmRow(r) }));

function where(sql: Sql, f: AlarmQuery) {
  const parts = [sql`true`];
  if (f.deviceId !== undefined) parts.push(sql`device_id = ${f.deviceId}`);
  if (f.ruleId !== undefined) parts.push(sql`rule_id = ${f.ruleId}`);
  if (f.severity !== undefined) parts.push(sql`severity = ${f.severity}`);
  if (f.state !== undefined) parts.push(sql`state = ${f.state}`);
  if (f.acknowledged !== undefined) parts.push(sql`acknowledged = ${f.acknowledged}`);
  return parts.reduce((acc, p) => sql`${acc} AND ${p}`);
}

const isAlarmRule = (r: RuleRecord) => r.alarm !== undefined && r.trigger.kind === "event";
const metricOf = (r: RuleRecord) => (r.trigger.kind === "event" ? r.trigger.metric : "");

/** AlarmRepository on PostgreSQL/PGlite; `notifications` is written on each change's transaction. */
export function createAlarmStore(sql: Sql, notifications: AlarmNotifications<TxSql>): AlarmRepository {
  /** Enqueues what the policy notifies, on `tx`, and hands back every change for watchers. */
  async function record(tx: TxSql, list: AlarmChange[], now: Date, rule?: RuleRecord): Promise<AlarmChange[]> {
    await notifications.enqueue(
      tx,
      list.filter((c) => notifies(c, rule?.alarm)),
      now,
    );
    return list;
  }

  return {
    async raise(req) {
      return withTransaction(sql, async (tx) => {
        // FOR SHARE: an update or delete of the rule waits for this raise, and the reverse.
        const [row] = await tx<RuleRow[]>`SELECT * FROM rules WHERE id = ${req.ruleId} FOR SHARE`;
        const rule = row ? fromRow(row) : undefined;
        if (!rule || !isAlarmRule(rule) || rule.paused || alarmVersion(rule) !== req.version) return { outcome: "inactive" as const };
        const at = req.time.getTime();
        if ((rule.startTime && at < rule.startTime.getTime()) || (rule.endTime && at >= rule.endTime.getTime())) return { outcome: "inactive" as const };
        const targets = await resolveTargets(tx, [rule], [req.deviceId]);
        if (!(targets.get(rule.id) ?? []).includes(req.deviceId)) return { outcome: "inactive" as const };
        const a = rule.alarm!;
        // The episode key and the one-active index make this the exactly-once claim. An episode
        // that overlaps one already cleared is a late replica's view of history: not raised.
        const rows = await tx<AlarmRow[]>`
          INSERT INTO alarms (id, rule_id, device_id, severity, state, metric, description, start_time, raise_time, raise_value,
                              notify_on_clear, escalate_after_ms, create_time, update_time)
          SELECT ${randomUUID()}, ${rule.id}, d.id, ${a.severity}, 'ACTIVE', ${metricOf(rule)}, ${a.description}, ${req.start}, ${req.time},
                 ${req.value}, ${a.notifyOnClear}, ${a.escalateAfterMs ?? null}, ${req.now}, ${req.now}
          FROM devices d
          WHERE d.id = ${req.deviceId} AND NOT EXISTS (
            SELECT 1 FROM alarms c WHERE c.rule_id = ${rule.id} AND c.device_id = ${req.deviceId} AND c.state = 'CLEARED' AND c.clear_time >= ${req.start})
          ON CONFLICT DO NOTHING RETURNING *`;
        if (rows.length > 0) {
          const [change] = await record(tx, changes("alarm.raised", rows), req.now, rule);
          return { outcome: "raised" as const, change: change! };
        }
        const [active] = await tx`SELECT start_time FROM alarms WHERE rule_id = ${rule.id} AND device_id = ${req.deviceId} AND state = 'ACTIVE'`;
        return active ? { outcome: "active" as const, start: active.start_time as Date } : { outcome: "stale" as const };
      });
    },

    async clear(req) {
      return withTransaction(sql, async (tx) => {
        const rows = await tx<AlarmRow[]>`
          UPDATE alarms SET state = 'CLEARED', clear_time = ${req.time}, clear_value = ${req.value}, update_time = ${req.now}, revision = revision + 1
          WHERE rule_id = ${req.ruleId} AND device_id = ${req.deviceId} AND state = 'ACTIVE' AND start_time < ${req.time} AND metric <> ${ONLINE_METRIC}
          RETURNING *`;
        const [change] = await record(tx, changes("alarm.cleared", rows), req.now);
        return change;
      });
    },

    async sweepPresence(now) {
      const rules = (
        await sql<RuleRow[]>`
        SELECT * FROM rules WHERE alarm IS NOT NULL AND NOT paused AND trigger->'event'->>'metric' = ${ONLINE_METRIC}`
      )
        .map(fromRow)
        .filter((r) => (!r.startTime || r.startTime <= now) && (!r.endTime || r.endTime > now));
      const specs = rules.map((r) => ({
        rule_id: r.id,
        device_id: r.target.kind === "device" ? r.target.deviceId : null,
        kind: r.target.kind === "selector" ? r.target.productKind : null,
        labels: r.target.kind === "selector" ? r.target.labels : null,
        severity: r.alarm!.severity,
        description: r.alarm!.description,
        notify_on_clear: r.alarm!.notifyOnClear,
        escalate_after_ms: r.alarm!.escalateAfterMs ?? null,
        for_ms: r.trigger.kind === "event" ? r.trigger.forMs : 0,
      }));
      return withTransaction(sql, async (tx) => {
        // A reconnect ends the episode; so does a device seen since the episode began (it came
        // back and went again between two sweeps: the next sweep raises the new episode).
        const cleared = await tx<AlarmRow[]>`
          UPDATE alarms a SET state = 'CLEARED', clear_time = GREATEST(COALESCE(d.last_seen_time, ${now}), a.raise_time), clear_value = 1,
                 update_time = ${now}, revision = a.revision + 1
          FROM devices d
          WHERE a.device_id = d.id AND a.state = 'ACTIVE' AND a.metric = ${ONLINE_METRIC}
            AND (d.online OR COALESCE(d.last_seen_time, d.create_time) > a.start_time)
          RETURNING a.*`;
        const out = await record(tx, changes("alarm.cleared", cleared), now);
        if (specs.length === 0) return out;
        // Offline longer than the rule's "for": the episode is keyed by when the device was last
        // seen, the same on every replica, so concurrent sweeps raise it once.
        const raised = await tx<AlarmRow[]>`
          INSERT INTO alarms (id, rule_id, device_id, severity, state, metric, description, start_time, raise_time, raise_value,
                              notify_on_clear, escalate_after_ms, create_time, update_time)
          SELECT gen_random_uuid(), v.rule_id, d.id, v.severity, 'ACTIVE', ${ONLINE_METRIC}, v.description,
                 COALESCE(d.last_seen_time, d.create_time), COALESCE(d.last_seen_time, d.create_time) + v.for_ms * interval '1 millisecond', 0,
                 v.notify_on_clear, v.escalate_after_ms, ${now}, ${now}
          FROM jsonb_to_recordset(${tx.json(specs)}) AS v(rule_id text, device_id text, kind text, labels jsonb, severity int, description text,
                                                          notify_on_clear boolean, escalate_after_ms bigint, for_ms bigint)
          JOIN devices d ON (v.device_id IS NOT NULL AND d.id = v.device_id) OR (v.device_id IS NULL AND d.kind = v.kind AND d.labels @> v.labels)
          WHERE NOT d.online AND COALESCE(d.last_seen_time, d.create_time) <= ${now}::timestamptz - v.for_ms * interval '1 millisecond'
          ON CONFLICT DO NOTHING RETURNING *`;
        const byId = new Map(rules.map((r) => [r.id, r]));
        for (const c of changes("alarm.raised", raised)) out.push(...(await record(tx, [c], now, byId.get(c.alarm.ruleId))));
        return out;
      });
    },

    async escalate(now, limit) {
      const [due] = await sql`
        SELECT 1 FROM alarms WHERE state = 'ACTIVE' AND NOT acknowledged AND escalate_time IS NULL AND escalate_after_ms IS NOT NULL
          AND create_time + escalate_after_ms * interval '1 millisecond' <= ${now} LIMIT 1`;
      if (!due) return [];
      return withTransaction(sql, async (tx) => {
        // The guard is re-checked on the locked row: one replica escalates each alarm, once.
        const rows = await tx<AlarmRow[]>`
          UPDATE alarms SET escalate_time = ${now}, update_time = ${now}, revision = revision + 1
          WHERE id IN (
            SELECT id FROM alarms WHERE state = 'ACTIVE' AND NOT acknowledged AND escalate_time IS NULL AND escalate_after_ms IS NOT NULL
              AND create_time + escalate_after_ms * interval '1 millisecond' <= ${now}
            ORDER BY create_time LIMIT ${limit} FOR UPDATE SKIP LOCKED)
          AND state = 'ACTIVE' AND NOT acknowledged AND escalate_time IS NULL
          RETURNING *`;
        return record(tx, changes("alarm.escalated", rows), now);
      });
    },

    async acknowledge(id, ack) {
      return withTransaction(sql, async (tx) => {
        const rows = await tx<AlarmRow[]>`
          UPDATE alarms SET acknowledged = true, acknowledger = ${ack.by}, acknowledge_time = ${ack.now}, acknowledge_comment = ${ack.comment},
                 update_time = ${ack.now}, revision = revision + 1
          WHERE id = ${id} AND NOT acknowledged ${ack.expectedRevision !== undefined ? tx`AND revision = ${ack.expectedRevision}` : tx``}
          RETURNING *`;
        if (rows.length > 0) auditCall(tx);
        const [change] = await record(tx, changes("alarm.acknowledged", rows), ack.now);
        return change;
      });
    },

    async get(id) {
      const [row] = await sql<AlarmRow[]>`SELECT * FROM alarms WHERE id = ${id}`;
      return row ? fromAlarmRow(row) : undefined;
    },

    async list({ filter, scope, before, limit }) {
      const rows = await sql<AlarmRow[]>`
        SELECT * FROM alarms WHERE ${where(sql, filter)}
          AND ${scope.all ? sql`true` : sql`device_id IN (SELECT id FROM devices WHERE ${whereScope(sql, scope)})`}
          AND ${before ? sql`(raise_time, id) < (${before.raiseTime}, ${before.id}::uuid)` : sql`true`}
        ORDER BY raise_time DESC, id DESC LIMIT ${limit}`;
      return rows.map(fromAlarmRow);
    },

    async count({ filter, scope }) {
      const rows = await sql`
        SELECT severity, count(*)::bigint AS n FROM alarms WHERE ${where(sql, filter)}
          AND ${scope.all ? sql`true` : sql`device_id IN (SELECT id FROM devices WHERE ${whereScope(sql, scope)})`}
        GROUP BY severity`;
      return new Map(rows.map((r) => [Number(r.severity), Number(r.n)]));
    },

    async alarmRules() {
      const rows = await sql<RuleRow[]>`
        SELECT * FROM rules WHERE alarm IS NOT NULL AND NOT paused AND trigger_kind = 'event'
          AND trigger->'event'->>'metric' <> ${ONLINE_METRIC} ORDER BY id`;
      const rules = rows.map(fromRow);
      const targets = await resolveTargets(sql, rules);
      return rules.map((rule): AlarmRuleView => ({ rule, deviceIds: targets.get(rule.id) ?? [] }));
    },

    async activeAlarms(ruleIds) {
      if (ruleIds.length === 0) return [];
      const rows = await sql`SELECT rule_id, device_id, start_time FROM alarms WHERE state = 'ACTIVE' AND rule_id = ANY(${ruleIds}::text[])`;
      return rows.map((r) => ({ ruleId: String(r.rule_id), deviceId: String(r.device_id), start: r.start_time as Date }));
    },
  };
}
