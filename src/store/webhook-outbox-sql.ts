import { randomUUID } from "node:crypto";
import { create, fromJson, type JsonValue, toJson } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { AlarmSchema } from "../../gen/tether/v1/alarm_pb.js";
import { type Event, EventSchema } from "../../gen/tether/v1/event_pb.js";
import { toConnectivityEvent } from "../core/connectivity/connectivity-reason.js";
import { deviceName } from "../core/devices/device-name.js";
import { toJobProto } from "../core/jobs/job-record.js";
import type { ClaimedDelivery, PendingEvent, WebhookRepository } from "../core/ports/webhooks.js";
import { toTaskProto } from "../core/tasks/task-record.js";
import type { DeviceFacts } from "../core/webhooks/device-match.js";
import type { TextSealer } from "../core/auth/key-sealing.js";
import type { Sql } from "./database.js";
import { type DeviceRow, factsOf, toStored } from "./device-store.js";
import { createJobStore } from "./job-store.js";
import { fromRow as taskFromRow, type TaskRow } from "./task-rows.js";
import { type TxSql, withTransaction } from "./transaction.js";
import { deliveryFromRow, webhookFromRow } from "./webhook-store.js";

type Outbox = Pick<WebhookRepository, "fanOut" | "claim" | "record" | "release" | "expire" | "prune">;
type EventRow = { id: string; type: string; device_id: string | null; time: Date; resource: Record<string, unknown> };

/**
 * The outbox half of the webhook store. The triggers wrote `webhook_events` rows in the changes'
 * own transactions; here they are fanned out to subscriptions (one transaction, rows locked with
 * SKIP LOCKED so replicas split the work), and deliveries are leased, sent and recorded.
 */
export function createWebhookOutbox(sql: Sql, sealer: TextSealer): Outbox {
  return {
    fanOut: (limit, now, route) =>
      withTransaction(sql, async (tx) => {
        const rows = await tx<EventRow[]>`
          SELECT id, type, device_id, time, resource FROM webhook_events WHERE NOT fanned_out
          ORDER BY seq LIMIT ${limit} FOR UPDATE SKIP LOCKED`;
        if (rows.length === 0) return 0;
        // Read here, not from a cache: a subscription created on another replica a moment ago
        // is committed, since the trigger that wrote these events saw it.
        const subscriptions = (await tx<Record<string, unknown>[]>`SELECT * FROM webhooks WHERE NOT disabled ORDER BY id`).map((r) =>
          webhookFromRow(r, sealer),
        );
        const events = await buildEvents(tx, rows);
        const d = { id: [] as string[], webhook: [] as string[], event: [] as string[], type: [] as string[], device: [] as (string | null)[] };
        const routed: { id: string; payload: JsonValue }[] = [];
        const unrouted: string[] = [];
        for (const e of events) {
          const targets = e ? route(e, subscriptions) : [];
          if (!e || targets.length === 0) {
            unrouted.push(e?.id ?? "");
            continue;
          }
          routed.push({ id: e.id, payload: toJson(EventSchema, e.event) });
          for (const w of targets) {
            d.id.push(randomUUID());
            d.webhook.push(w);
            d.event.push(e.id);
            d.type.push(e.type);
            d.device.push(e.facts?.id ?? (e.event.device ? e.event.device.slice("devices/".length) : null));
          }
        }
        // An event nobody wants (filters, or a subscription gone since the trigger ran) is dropped.
        const drop = [...unrouted.filter(Boolean), ...rows.filter((_, i) => !events[i]).map((r) => r.id)];
        if (drop.length > 0) await tx`DELETE FROM webhook_events WHERE id = ANY(${drop}::uuid[])`;
        if (routed.length > 0) {
          await tx`
            UPDATE webhook_events e SET fanned_out = true, payload = v.payload::jsonb
            FROM unnest(${routed.map((r) => r.id)}::uuid[], ${routed.map((r) => JSON.stringify(r.payload))}::text[]) AS v (id, payload)
            WHERE e.id = v.id`;
          await tx`
            INSERT INTO webhook_deliveries (id, webhook_id, event_id, event_type, device_id, next_attempt_time, create_time)
            SELECT v.id, v.webhook_id, v.event_id, v.event_type, v.device_id, ${now}, ${now}
            FROM unnest(${d.id}::uuid[], ${d.webhook}::text[], ${d.event}::uuid[], ${d.type}::text[], ${d.device}::text[])
              AS v (id, webhook_id, event_id, event_type, device_id)
            WHERE EXISTS (SELECT 1 FROM webhooks w WHERE w.id = v.webhook_id)`;
        }
        return rows.length;
      }),

    async claim(webhookId, limit, now, leaseUntil) {
      const rows = await sql<(Record<string, unknown> & { payload: string })[]>`
        UPDATE webhook_deliveries d SET lease_until = ${leaseUntil}, attempt_count = d.attempt_count + 1
        FROM (SELECT id FROM webhook_deliveries
              WHERE webhook_id = ${webhookId} AND state IN ('PENDING', 'FAILED') AND next_attempt_time <= ${now}
                AND (lease_until IS NULL OR lease_until < ${now})
              ORDER BY next_attempt_time LIMIT ${limit} FOR UPDATE SKIP LOCKED) c, webhook_events e
        WHERE d.id = c.id AND e.id = d.event_id
        RETURNING d.*, e.payload::text AS payload`;
      return rows.map((r): ClaimedDelivery => ({ ...deliveryFromRow(r), payload: r.payload }));
    },

    // Times travel as ISO text: postgres.js cannot type a timestamptz[] parameter holding nulls.
    async record(outcomes) {
      if (outcomes.length === 0) return;
      const col = <T>(f: (o: (typeof outcomes)[number]) => T) => outcomes.map(f);
      await sql`
        UPDATE webhook_deliveries d SET state = v.state, last_status = v.status, last_error = v.error,
          next_attempt_time = COALESCE(v.next_time::timestamptz, d.next_attempt_time), end_time = v.end_time::timestamptz, lease_until = NULL
        FROM unnest(${col((o) => o.id)}::uuid[], ${col((o) => o.state)}::text[], ${col((o) => o.lastStatus)}::int[],
                    ${col((o) => o.lastError)}::text[], ${col((o) => o.nextAttemptTime?.toISOString() ?? null)}::text[],
                    ${col((o) => o.endTime?.toISOString() ?? null)}::text[]) AS v (id, state, status, error, next_time, end_time)
        WHERE d.id = v.id`;
    },

    async release(ids) {
      if (ids.length === 0) return;
      await sql`
        UPDATE webhook_deliveries SET lease_until = NULL, attempt_count = attempt_count - 1
        WHERE id = ANY(${ids as string[]}::uuid[]) AND lease_until IS NOT NULL`;
    },

    async expire(before, now) {
      const rows = await sql`
        UPDATE webhook_deliveries SET state = 'DEAD', end_time = ${now},
          last_error = CASE WHEN last_error = '' THEN 'maximum age reached' ELSE last_error || '; maximum age reached' END
        WHERE state IN ('PENDING', 'FAILED') AND create_time < ${before} AND (lease_until IS NULL OR lease_until < ${now})
        RETURNING id`;
      return rows.length;
    },

    async prune(before) {
      const done = await sql`DELETE FROM webhook_deliveries WHERE state = 'DELIVERED' AND end_time < ${before} RETURNING id`;
      await sql`DELETE FROM webhook_events e WHERE fanned_out AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id)`;
      return done.length;
    },
  };
}

/**
 * The Event of each row, in order (undefined for a row that cannot be built: a type this version
 * does not know). Row snapshots are turned back into typed rows by jsonb_populate_record, so the
 * task and device mappers are the stores' own.
 */
/** A `connectivity_events` row as the trigger stored it (to_jsonb: times as ISO text). */
interface ConnectivityRow {
  id: number;
  device_id: string;
  event_time: string;
  connected: boolean;
  reason: string;
  remote_address: string;
}

async function buildEvents(tx: TxSql, rows: EventRow[]): Promise<(PendingEvent | undefined)[]> {
  const ids = (pred: (r: EventRow) => boolean) => rows.filter(pred).map((r) => r.id);
  const taskIds = ids((r) => r.type === "task.state_changed");
  const deviceEventIds = ids((r) => r.type.startsWith("device.") && r.type !== "device.connectivity");
  const tasks = new Map<string, TaskRow>();
  if (taskIds.length > 0) {
    const t = await tx<(TaskRow & { webhook_event_id: string })[]>`
      SELECT e.id AS webhook_event_id, t.* FROM webhook_events e, jsonb_populate_record(NULL::tasks, e.resource) t
      WHERE e.id = ANY(${taskIds}::uuid[])`;
    for (const r of t) tasks.set(r.webhook_event_id, r);
  }
  const devices = new Map<string, DeviceRow>();
  if (deviceEventIds.length > 0) {
    const t = await tx<(DeviceRow & { webhook_event_id: string })[]>`
      SELECT e.id AS webhook_event_id, d.* FROM webhook_events e, jsonb_populate_record(NULL::devices, e.resource) d
      WHERE e.id = ANY(${deviceEventIds}::uuid[])`;
    for (const r of t) devices.set(r.webhook_event_id, r);
  }
  // Task, connectivity and alarm events are filtered on their device as it is now (their rows do
  // not carry labels).
  const factIds = [
    ...new Set(
      rows.filter((r) => (tasks.has(r.id) || r.type === "device.connectivity" || r.type.startsWith("alarm.")) && r.device_id).map((r) => r.device_id!),
    ),
  ];
  const facts = new Map<string, DeviceFacts>();
  if (factIds.length > 0) {
    const f = await tx<DeviceRow[]>`SELECT * FROM devices WHERE id = ANY(${factIds}::text[])`;
    for (const r of f) facts.set(r.id, factsOf(r));
  }
  const jobs = createJobStore(tx as unknown as Sql);
  const out: (PendingEvent | undefined)[] = [];
  for (const r of rows) {
    const base = { id: r.id, type: r.type, time: timestampFromDate(r.time), device: r.device_id ? deviceName(r.device_id) : "" };
    let event: Event | undefined;
    let f: DeviceFacts | undefined;
    const task = tasks.get(r.id);
    const device = devices.get(r.id);
    if (task) {
      event = create(EventSchema, { ...base, payload: { case: "task", value: toTaskProto(taskFromRow(task)) } });
      // A task whose device is gone matches only a filter that looks at nothing.
      f = facts.get(task.device_id) ?? { id: task.device_id, kind: "", owner: "", online: false, labels: {} };
    } else if (device) {
      event = create(EventSchema, { ...base, payload: { case: "deviceSnapshot", value: toStored(device).device } });
      f = factsOf(device);
    } else if (r.type === "device.connectivity") {
      const c = r.resource as unknown as ConnectivityRow;
      const record = {
        id: String(c.id),
        deviceId: c.device_id,
        connected: c.connected,
        reason: c.reason,
        remoteAddress: c.remote_address,
        time: new Date(c.event_time),
      };
      event = create(EventSchema, { ...base, payload: { case: "connectivity", value: toConnectivityEvent(record) } });
      f = r.device_id ? facts.get(r.device_id) : undefined;
    } else if (r.type.startsWith("alarm.")) {
      event = create(EventSchema, {
        ...base,
        payload: { case: "alarm", value: fromJson(AlarmSchema, r.resource as JsonValue, { ignoreUnknownFields: true }) },
      });
      f = r.device_id ? facts.get(r.device_id) : undefined;
    } else if (r.type === "job.progress") {
      const view = await jobs.get(String(r.resource.id));
      if (view) event = create(EventSchema, { ...base, payload: { case: "job", value: toJobProto(view) } });
    }
    out.push(event ? { id: r.id, type: r.type, event, facts: f } : undefined);
  }
  return out;
}
