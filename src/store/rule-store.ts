import { AlreadyExistsError } from "../core/errors.js";
import { jobName } from "../core/jobs/job-name.js";
import { jobForRun } from "../core/rules/rule-jobs.js";
import { conditionVersion, type RuleRecord, type RunState } from "../core/rules/rule-record.js";
import type { EventRuleView, RuleRepository } from "../core/ports/rule-repository.js";
import { runOutcome } from "../core/rules/rule-tasks.js";
import { parseStateName, type State } from "../core/tasks/task-state.js";
import type { Sql } from "./database.js";
import { whereScope } from "./device-store.js";
import { type PendingRun, planTasks, recordRuns, resolveTargets } from "./rule-fire-steps.js";
import { fromRow, fromRunRow, type RuleRow, type RunRow, toRow } from "./rule-rows.js";
import { insertJob } from "./job-store.js";
import { creatorAdminCheck, creatorUsers } from "../core/access/creator-rights.js";
import { loadCreatorRights } from "./creator-rights-query.js";
import { auditedChange, type TxSql, withTransaction } from "./transaction.js";

/** Job rules' firings: each creates its job (deterministic id) on the firing's transaction. */
async function startJobs(tx: TxSql, items: Array<{ rule: RuleRecord; occurrence: Date }>, now: Date) {
  const out = new Map<string, { state: RunState; reason: string; jobId?: string }>();
  if (items.length === 0) return out;
  // Only an admin starts jobs: one rights query for the batch's job rules (none if all are services').
  const notAdmin = creatorAdminCheck(await loadCreatorRights(tx, creatorUsers(items.map((i) => i.rule.creator)), []));
  for (const { rule, occurrence } of items) {
    const refused = notAdmin(rule.creator);
    if (refused) {
      out.set(rule.id, { state: "FAILED", reason: refused });
      continue;
    }
    const made = jobForRun(rule, occurrence, now);
    if ("error" in made) {
      out.set(rule.id, { state: "FAILED", reason: made.error });
      continue;
    }
    const v = await insertJob(tx, made.job, now);
    out.set(
      rule.id,
      v
        ? {
            state: "FIRED",
            reason: `started ${jobName(made.job.id)} over ${v.job.targetCount} device${v.job.targetCount === 1 ? "" : "s"}`,
            jobId: made.job.id,
          }
        : { state: "FAILED", reason: `${jobName(made.job.id)} already exists` },
    );
  }
  return out;
}

/** RuleRepository on PostgreSQL/PGlite. */
export function createRuleStore(sql: Sql): RuleRepository {
  return {
    async insert(rule) {
      const rows = await auditedChange(
        sql,
        (q) => q<RuleRow[]>`INSERT INTO rules ${q(toRow(sql, { ...rule, revision: 1 }))} ON CONFLICT (id) DO NOTHING RETURNING *`,
        { changed: (r) => r.length > 0, resource: () => `rules/${rule.id}` },
      );
      if (rows.length === 0) throw new AlreadyExistsError(`rules/${rule.id}`);
      return fromRow(rows[0]!);
    },

    async get(id) {
      const [row] = await sql<RuleRow[]>`SELECT * FROM rules WHERE id = ${id}`;
      return row ? fromRow(row) : undefined;
    },

    async list({ afterId, scope, limit }) {
      // Selector rules are admin-only: a limited scope sees rules on its devices only.
      const rows = await sql<RuleRow[]>`
        SELECT * FROM rules WHERE ${afterId !== undefined ? sql`id > ${afterId}` : sql`true`}
          AND ${scope && !scope.all ? sql`target->>'device' IN (SELECT id FROM devices WHERE ${whereScope(sql, scope)})` : sql`true`}
        ORDER BY id LIMIT ${limit}`;
      return rows.map(fromRow);
    },

    async update(next, { reschedule }) {
      const { id: _id, uid: _uid, create_time: _c, next_fire_time, last_fire_time: _l, revision: _r, creator: _cr, ...fields } = toRow(sql, next);
      const [row] = await auditedChange(
        sql,
        (q) => q<RuleRow[]>`
        UPDATE rules SET ${q(fields)}, revision = revision + 1
          ${reschedule ? q`, next_fire_time = ${next_fire_time}` : q``}
        WHERE id = ${next.id} AND revision = ${next.revision}
        RETURNING *`,
        { changed: (r) => r.length > 0 },
      );
      return row ? fromRow(row) : undefined;
    },

    async delete(id, expectedRevision) {
      const rows = await auditedChange(
        sql,
        (q) => q`
        DELETE FROM rules WHERE id = ${id} ${expectedRevision !== undefined ? q`AND revision = ${expectedRevision}` : q``} RETURNING id`,
        { changed: (r) => r.length > 0 },
      );
      return rows.length > 0;
    },

    async listRuns(ruleId, { beforeId, limit }) {
      const rows = await sql<RunRow[]>`
        SELECT * FROM rule_runs
        WHERE rule_id = ${ruleId} AND ${beforeId !== undefined ? sql`id < ${beforeId}` : sql`true`}
        ORDER BY id DESC LIMIT ${limit}`;
      return rows.map(fromRunRow);
    },

    async taskStates(taskIds) {
      const states = new Map<string, State>();
      if (taskIds.length === 0) return states;
      const rows = await sql`SELECT id, state FROM tasks WHERE id = ANY(${taskIds}::uuid[])`;
      for (const r of rows) states.set(String(r.id), parseStateName(String(r.state)) ?? 0);
      return states;
    },

    async fireDue(now, limit, decide) {
      // A cheap read first: most ticks find nothing due and need no transaction (nor, on the
      // embedded database, the one connection for longer than a query).
      const [due] = await sql`SELECT 1 FROM rules WHERE next_fire_time <= ${now} AND NOT paused LIMIT 1`;
      if (!due) return { claimed: 0, runs: [], tasks: [], jobIds: [] };
      return withTransaction(sql, async (tx) => {
        // SKIP LOCKED: rules another scheduler is firing right now are its business.
        const rows = await tx<RuleRow[]>`
          SELECT * FROM rules WHERE next_fire_time <= ${now} AND NOT paused
          ORDER BY next_fire_time LIMIT ${limit} FOR UPDATE SKIP LOCKED`;
        if (rows.length === 0) return { claimed: 0, runs: [], tasks: [], jobIds: [] };
        const decided = rows.map(fromRow).map((rule) => ({ rule, d: decide(rule) }));
        const firing = decided.filter((x) => x.d.run?.action === "fire" && x.rule.target.kind !== "job");
        const targets = await resolveTargets(
          tx,
          firing.map((x) => x.rule),
        );
        const planned = await planTasks(
          tx,
          firing.map((x) => ({ rule: x.rule, occurrence: x.d.run!.occurrence, deviceIds: targets.get(x.rule.id) ?? [] })),
          now,
        );
        const started = await startJobs(
          tx,
          decided.filter((x) => x.d.run?.action === "fire" && x.rule.target.kind === "job").map((x) => ({ rule: x.rule, occurrence: x.d.run!.occurrence })),
          now,
        );
        const pending: PendingRun[] = decided.flatMap(({ rule, d }) => {
          if (!d.run) return [];
          const base = { rule, subject: "", occurrence: d.run.occurrence, missed: d.run.missed };
          if (d.run.action === "skip") return [{ ...base, state: "SKIPPED" as const, reason: d.run.reason, targets: [], tasks: [] }];
          const job = started.get(rule.id);
          if (job) return [{ ...base, ...job, reason: [job.reason, d.run.reason].filter(Boolean).join("; "), targets: [], tasks: [] }];
          const p = planned.get(rule.id)!;
          const outcome = runOutcome(rule, p.targets, d.run.reason);
          return [{ ...base, state: outcome.state, reason: outcome.reason, targets: p.targets, tasks: p.tasks }];
        });
        const { runs, tasks } = await recordRuns(tx, pending, now);
        const fired = new Set(runs.filter((r) => r.state !== "SKIPPED").map((r) => r.ruleId));
        const advance = decided.map(({ rule, d }) => ({
          id: rule.id,
          next: d.next?.toISOString() ?? null,
          last: fired.has(rule.id) ? now.toISOString() : null,
        }));
        await tx`
          UPDATE rules r SET next_fire_time = v.next, last_fire_time = COALESCE(v.last, r.last_fire_time)
          FROM jsonb_to_recordset(${tx.json(advance)}) AS v(id text, next timestamptz, last timestamptz)
          WHERE r.id = v.id`;
        const jobIds = runs.flatMap((r) => (r.jobId && r.state === "FIRED" ? [r.jobId] : []));
        return { claimed: rows.length, runs, tasks, jobIds };
      });
    },

    async fireEvent(req) {
      const rollback = Symbol("rollback");
      try {
        return await withTransaction(sql, async (tx) => {
          const [row] = await tx<RuleRow[]>`SELECT * FROM rules WHERE id = ${req.ruleId} FOR UPDATE`;
          const rule = row ? fromRow(row) : undefined;
          const t = rule?.trigger;
          if (!rule || !t || t.kind !== "event" || rule.paused || rule.alarm || conditionVersion(rule) !== req.version) return { outcome: "inactive" as const };
          const at = req.occurrence.getTime();
          if ((rule.startTime && at < rule.startTime.getTime()) || (rule.endTime && at >= rule.endTime.getTime())) return { outcome: "inactive" as const };
          const targets = await resolveTargets(tx, [rule], [req.deviceId]);
          if (!(targets.get(rule.id) ?? []).includes(req.deviceId)) return { outcome: "inactive" as const };
          // The cooldown, exact across replicas: the upsert only moves last_fire_time if it has passed.
          const moved = await tx`
            INSERT INTO rule_event_fires (rule_id, device_id, last_fire_time) VALUES (${rule.id}, ${req.deviceId}, ${req.occurrence})
            ON CONFLICT (rule_id, device_id) DO UPDATE SET last_fire_time = EXCLUDED.last_fire_time
            WHERE rule_event_fires.last_fire_time <= ${new Date(at - t.cooldownMs)}
            RETURNING 1`;
          if (moved.length === 0) {
            const [cur] = await tx`SELECT last_fire_time FROM rule_event_fires WHERE rule_id = ${rule.id} AND device_id = ${req.deviceId}`;
            return { outcome: "cooldown" as const, lastFireTime: cur!.last_fire_time as Date };
          }
          const p = (await planTasks(tx, [{ rule, occurrence: req.occurrence, deviceIds: [req.deviceId] }], req.now)).get(rule.id)!;
          const outcome = runOutcome(rule, p.targets, `${t.metric} = ${req.value}`);
          const { runs, tasks } = await recordRuns(
            tx,
            [
              {
                rule,
                subject: req.deviceId,
                occurrence: req.occurrence,
                state: outcome.state,
                reason: outcome.reason,
                missed: 0,
                value: req.value,
                targets: p.targets,
                tasks: p.tasks,
              },
            ],
            req.now,
          );
          if (runs.length === 0) throw rollback; // recorded before: undo the cooldown move too
          await tx`UPDATE rules SET last_fire_time = GREATEST(last_fire_time, ${req.now}) WHERE id = ${rule.id}`;
          return { outcome: "fired" as const, run: runs[0]!, tasks };
        });
      } catch (err) {
        if (err === rollback) return { outcome: "duplicate" };
        throw err;
      }
    },

    async eventRules() {
      const rows = await sql<RuleRow[]>`SELECT * FROM rules WHERE trigger_kind = 'event' AND NOT paused AND alarm IS NULL ORDER BY id`;
      const rules = rows.map(fromRow);
      const targets = await resolveTargets(sql, rules);
      return rules.map((rule): EventRuleView => ({ rule, deviceIds: targets.get(rule.id) ?? [] }));
    },

    async nextDueTime() {
      const [row] = await sql`SELECT min(next_fire_time) AS t FROM rules WHERE NOT paused AND next_fire_time IS NOT NULL`;
      return (row?.t as Date | null) ?? undefined;
    },
  };
}
