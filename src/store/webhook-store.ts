import type { WebhookRepository } from "../core/ports/webhooks.js";
import { AlreadyExistsError } from "../core/errors.js";
import type { DeliveryRecord, DeliveryState, WebhookRecord } from "../core/webhooks/webhook-record.js";
import { webhookName } from "../core/webhooks/webhook-record.js";
import type { TextSealer } from "../core/auth/key-sealing.js";
import type { Sql } from "./database.js";
import { auditedChange } from "./transaction.js";
import { createWebhookOutbox } from "./webhook-outbox-sql.js";

type Row = Record<string, unknown>;

/** No sealing: secrets stored as they are (tests, and the default of `createWebhookStore`). */
export const PLAIN: TextSealer = { seal: (s) => s, open: (s) => s };

/**
 * WebhookRepository on PostgreSQL/PGlite: subscriptions here, the outbox in webhook-outbox-sql.ts.
 * Signing secrets are sealed with `sealer` on every write and opened on every read.
 */
export function createWebhookStore(sql: Sql, sealer: TextSealer = PLAIN): WebhookRepository {
  const fromRow = (r: Row) => webhookFromRow(r, sealer);
  const sealed = (s: string | undefined) => (s === undefined ? null : sealer.seal(s));
  return {
    async insert(r) {
      const rows = await auditedChange(
        sql,
        (q) => q<Row[]>`
        INSERT INTO webhooks (id, uid, display_name, url, event_types, device_filter, payload_format, disabled, secret, create_time, update_time, revision)
        VALUES (${r.id}, ${r.uid}, ${r.displayName}, ${r.url}, ${r.eventTypes}::text[], ${r.deviceFilter}, ${r.payloadFormat}, ${r.disabled},
                ${sealer.seal(r.secret)}, ${r.createTime}, ${r.updateTime}, 1)
        ON CONFLICT (id) DO NOTHING RETURNING *`,
        { changed: (x) => x.length > 0 },
      );
      if (!rows[0]) throw new AlreadyExistsError(webhookName(r.id));
      return fromRow(rows[0]);
    },
    async get(id) {
      const [row] = await sql<Row[]>`SELECT * FROM webhooks WHERE id = ${id}`;
      return row ? fromRow(row) : undefined;
    },
    async list({ afterId, limit }) {
      const rows = await sql<Row[]>`SELECT * FROM webhooks WHERE ${afterId ? sql`id > ${afterId}` : sql`true`} ORDER BY id LIMIT ${limit}`;
      return rows.map(fromRow);
    },
    async update(r) {
      const rows = await auditedChange(
        sql,
        (q) => q<Row[]>`
        UPDATE webhooks SET display_name = ${r.displayName}, url = ${r.url}, event_types = ${r.eventTypes}::text[],
          device_filter = ${r.deviceFilter}, payload_format = ${r.payloadFormat}, disabled = ${r.disabled}, secret = ${sealer.seal(r.secret)},
          previous_secret = ${sealed(r.previousSecret)}, previous_secret_expire_time = ${r.previousSecretExpireTime ?? null},
          update_time = ${r.updateTime}, revision = ${r.revision}
        WHERE id = ${r.id} AND revision = ${r.revision - 1} RETURNING *`,
        { changed: (x) => x.length > 0 },
      );
      return rows[0] ? fromRow(rows[0]) : undefined;
    },
    async delete(id, revision) {
      const rows = await auditedChange(
        sql,
        (q) => q`DELETE FROM webhooks WHERE id = ${id} AND ${revision === undefined ? q`true` : q`revision = ${revision}`} RETURNING id`,
        {
          changed: (x) => x.length > 0,
        },
      );
      // Events no delivery needs any more go with the next prune.
      return rows.length > 0;
    },
    async listEnabled() {
      const rows = await sql<Row[]>`SELECT * FROM webhooks WHERE NOT disabled ORDER BY id`;
      return rows.map(fromRow);
    },
    async withDueDeliveries(now) {
      const rows = await sql<{ id: string }[]>`
        SELECT w.id FROM webhooks w WHERE EXISTS (
          SELECT 1 FROM webhook_deliveries d WHERE d.webhook_id = w.id AND d.state IN ('PENDING', 'FAILED')
            AND d.next_attempt_time <= ${now} AND (d.lease_until IS NULL OR d.lease_until < ${now}))`;
      return rows.map((r) => r.id);
    },
    async listDeliveries(webhookId, { state, before, limit }) {
      const rows = await sql<Row[]>`
        SELECT * FROM webhook_deliveries
        WHERE webhook_id = ${webhookId} AND ${state ? sql`state = ${state}` : sql`true`}
          AND ${before ? sql`(create_time, id) < (${before.time}, ${before.id}::uuid)` : sql`true`}
        ORDER BY create_time DESC, id DESC LIMIT ${limit}`;
      return rows.map(deliveryFromRow);
    },
    async replay(webhookId, id, now) {
      const rows = await auditedChange(
        sql,
        (q) => q<Row[]>`
        UPDATE webhook_deliveries SET state = 'PENDING', attempt_count = 0, next_attempt_time = ${now}, create_time = ${now},
          end_time = NULL, lease_until = NULL
        WHERE webhook_id = ${webhookId} AND id = ${id}::uuid AND state = 'DEAD' RETURNING *`,
        { changed: (x) => x.length > 0 },
      );
      if (rows[0]) return deliveryFromRow(rows[0]);
      const exists = await sql`SELECT 1 FROM webhook_deliveries WHERE webhook_id = ${webhookId} AND id = ${id}::uuid`;
      return exists.length > 0 ? "not-dead" : undefined;
    },
    ...createWebhookOutbox(sql, sealer),
  };
}

/** A subscription row; a secret `sealer` cannot open (another TETHER_SIGNING_KEY_SECRET) reads as "". */
export function webhookFromRow(r: Row, sealer: TextSealer): WebhookRecord {
  const previous = r.previous_secret === null || r.previous_secret === undefined ? undefined : sealer.open(String(r.previous_secret));
  return {
    id: String(r.id),
    uid: String(r.uid),
    displayName: String(r.display_name),
    url: String(r.url),
    eventTypes: r.event_types as string[],
    deviceFilter: String(r.device_filter),
    payloadFormat: r.payload_format === "binary" ? "binary" : "json",
    disabled: Boolean(r.disabled),
    secret: sealer.open(String(r.secret)) ?? "",
    previousSecret: previous || undefined,
    previousSecretExpireTime: (r.previous_secret_expire_time as Date | null) ?? undefined,
    createTime: r.create_time as Date,
    updateTime: r.update_time as Date,
    revision: Number(r.revision),
  };
}

export function deliveryFromRow(r: Row): DeliveryRecord {
  return {
    id: String(r.id),
    webhookId: String(r.webhook_id),
    eventId: String(r.event_id),
    eventType: String(r.event_type),
    deviceId: (r.device_id as string | null) ?? undefined,
    state: r.state as DeliveryState,
    attemptCount: Number(r.attempt_count),
    lastStatus: Number(r.last_status),
    lastError: String(r.last_error),
    nextAttemptTime: r.next_attempt_time as Date,
    createTime: r.create_time as Date,
    endTime: (r.end_time as Date | null) ?? undefined,
  };
}
