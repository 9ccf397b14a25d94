import type { AuditCredential, AuditQuery, AuditRecord, AuditRepository, AuditStamp, PendingAudit } from "../core/ports/audit.js";
import { auditSink } from "./audit-context.js";
import type { Sql } from "./database.js";
import { whereScope } from "./device-store.js";
import type { TxSql } from "./transaction.js";

/** An event as inserted: a call's pending event with its outcome. */
export type AuditInsert = AuditStamp & { resource: string; statusCode: number; fieldPaths: string[]; deviceId?: string };

/** The device a resource lies under (`devices/{device}` or below it), for the rights join. */
export function deviceOfResource(resource: string): string | undefined {
  const m = /^devices\/([^/]+)/.exec(resource);
  return m ? m[1] : undefined;
}

/** A pending event as a successful change's row. */
export function okRow(p: PendingAudit): AuditInsert {
  return { ...p.stamp, resource: p.resource, statusCode: 0, fieldPaths: p.fieldPaths, deviceId: p.deviceId };
}

/**
 * Inserts events in one statement whatever their number (one JSON parameter, so one prepared
 * statement shape for a batch of 1 or 256): a group commit of many callers' tasks costs one
 * extra INSERT, not one per task.
 */
export async function insertAuditRows(q: Sql | TxSql, rows: readonly AuditInsert[]): Promise<AuditRecord[]> {
  if (rows.length === 0) return [];
  const json = rows.map((r) => ({
    create_time: r.time.toISOString(),
    principal: r.principal,
    credential: r.credential,
    certificate_serial: r.certificateSerial,
    method: r.method,
    resource: r.resource,
    device_id: r.deviceId ?? deviceOfResource(r.resource) ?? null,
    request_id: r.requestId,
    status_code: r.statusCode,
    field_paths: r.fieldPaths,
    via: r.via ?? "",
  }));
  const inserted = await q<{ id: string }[]>`
    INSERT INTO audit_events (create_time, principal, credential, certificate_serial, method, resource, device_id, request_id, status_code, field_paths, via)
    SELECT x.create_time, x.principal, x.credential, x.certificate_serial, x.method, x.resource, x.device_id, x.request_id, x.status_code,
           ARRAY(SELECT jsonb_array_elements_text(x.field_paths)), x.via
    FROM ROWS FROM (jsonb_to_recordset(${q.json(json as never)}) AS (create_time timestamptz, principal text, credential text, certificate_serial text,
         method text, resource text, device_id text, request_id text, status_code smallint, field_paths jsonb, via text))
         WITH ORDINALITY AS x (create_time, principal, credential, certificate_serial, method, resource, device_id, request_id, status_code, field_paths, via, n)
    ORDER BY x.n
    RETURNING id`;
  return rows.map((r, i) => ({ ...r, id: String(inserted[i]!.id), deviceId: r.deviceId ?? deviceOfResource(r.resource) }));
}

type AuditRow = {
  id: string | number;
  create_time: Date;
  principal: string;
  credential: string;
  certificate_serial: string;
  method: string;
  resource: string;
  device_id: string | null;
  request_id: string;
  status_code: number;
  field_paths: string[];
  via: string;
};

function fromRow(r: AuditRow): AuditRecord {
  return {
    id: String(r.id),
    time: r.create_time,
    principal: r.principal,
    credential: r.credential as AuditCredential,
    certificateSerial: r.certificate_serial,
    method: r.method,
    resource: r.resource,
    deviceId: r.device_id ?? undefined,
    requestId: r.request_id,
    statusCode: Number(r.status_code),
    fieldPaths: r.field_paths,
    via: r.via,
  };
}

/** `users/alice/*` → principal `users/alice` or below it; anything else exact. */
function wherePrincipal(sql: Sql, principal: string) {
  if (!principal.endsWith("/*")) return sql`principal = ${principal}`;
  const base = principal.slice(0, -2);
  return sql`(principal = ${base} OR starts_with(principal, ${`${base}/`}))`;
}

export function createAuditStore(sql: Sql): AuditRepository {
  return {
    async list(q: AuditQuery) {
      const conds = [sql`true`];
      if (q.principal) conds.push(wherePrincipal(sql, q.principal));
      if (q.resource) conds.push(sql`(resource = ${q.resource} OR starts_with(resource, ${`${q.resource}/`}))`);
      if (q.method) conds.push(q.method.includes("/") ? sql`method = ${q.method}` : sql`split_part(method, '/', 2) = ${q.method}`);
      if (q.via) conds.push(sql`via = ${q.via}`);
      if (q.startTime) conds.push(sql`create_time >= ${q.startTime}`);
      if (q.endTime) conds.push(sql`create_time < ${q.endTime}`);
      if (q.beforeId) conds.push(sql`id < ${q.beforeId}`);
      if (q.visibleTo && !q.visibleTo.scope.all) {
        const self = q.visibleTo.self;
        conds.push(sql`(principal = ${self} OR starts_with(principal, ${`${self}/`})
          OR device_id IN (SELECT id FROM devices WHERE ${whereScope(sql, q.visibleTo.scope)}))`);
      }
      const where = conds.reduce((acc, c) => sql`${acc} AND ${c}`);
      const rows = await sql<AuditRow[]>`SELECT * FROM audit_events WHERE ${where} ORDER BY id DESC LIMIT ${q.limit}`;
      return rows.map(fromRow);
    },
    async insert(events) {
      const records = await insertAuditRows(sql, events);
      auditSink(sql)?.(records);
      return records;
    },
    async deleteBefore(before) {
      // In slices, so a first run over a large backlog never holds one long transaction.
      let deleted = 0;
      for (;;) {
        const r = await sql`
          DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_events WHERE create_time < ${before} ORDER BY create_time LIMIT 10000)`;
        deleted += r.count;
        if (r.count < 10000) return deleted;
      }
    },
  };
}
