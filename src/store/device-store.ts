import { create, type DescMessage, fromJson, type JsonValue, type Message, toJson } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { DeliveryPolicy_Mode, type Device, DeviceSchema } from "../../gen/tether/v1/device_pb.js";
import type { DeviceScope } from "../core/access/access.js";
import type { DeviceFilter, FilterSubject } from "../core/devices/device-filter.js";
import { deviceName, parseDeviceName } from "../core/devices/device-name.js";
import type { DeviceRepository, StoredDevice } from "../core/ports/device-repository.js";
import { AlreadyExistsError } from "../core/errors.js";
import { productByCase, productByKindName } from "../core/products/index.js";
import type { Sql } from "./database.js";
import { whereFilter } from "./device-filter-sql.js";
import { reasonOf, toConnectivityEvent } from "../core/connectivity/connectivity-reason.js";
import { auditedChange, withTransaction } from "./transaction.js";
import { auditCall } from "./audit-context.js";

/** `devices.last_event`: a copy of the device's latest connectivity_events row. */
interface LastEvent {
  id: string | number;
  connected: boolean;
  reason: string;
  address: string;
  time: string;
}

export interface DeviceRow {
  id: string;
  uid: string;
  kind: string;
  display_name: string;
  labels: Record<string, string>;
  owner: string;
  firmware_version: string;
  desired: JsonValue;
  reported: JsonValue;
  online: boolean;
  last_seen_time: Date | null;
  listen_until_time: Date | null;
  last_uplink_time: Date | null;
  silent: boolean;
  last_event: LastEvent | null;
  create_time: Date;
  update_time: Date;
  revision: string | number;
  desired_version: string | number;
  reported_version: string | number;
  delivery_mode: string;
  max_pending_tasks: number;
}

/** DeviceRepository on PostgreSQL (or PGlite through the same wire protocol). */
export function createDeviceStore(sql: Sql): DeviceRepository {
  return {
    async insert(device, now) {
      const id = parseDeviceName(device.name);
      const product = productByCase(device.kind.case!);
      const desired = desiredJson(device);
      const rows = await auditedChange(
        sql,
        (q) => q<DeviceRow[]>`
        INSERT INTO devices (id, uid, kind, display_name, labels, owner, firmware_version, desired, desired_version,
                             delivery_mode, max_pending_tasks, create_time, update_time)
        VALUES (${id}, ${device.uid}, ${product.kindName}, ${device.displayName}, ${q.json(device.labels)},
                ${device.owner}, ${device.firmwareVersion}, ${q.json(desired)}, ${isEmpty(desired) ? 0 : 1},
                ${modeName(device)}, ${device.deliveryPolicy?.maxPendingTasks ?? 0}, ${now}, ${now})
        ON CONFLICT (id) DO NOTHING
        RETURNING *`,
        { changed: (r) => r.length > 0, resource: () => deviceName(id) },
      );
      if (rows.length === 0) throw new AlreadyExistsError(deviceName(id));
      return toStored(rows[0]!);
    },

    async get(id) {
      const rows = await sql<DeviceRow[]>`SELECT * FROM devices WHERE id = ${id}`;
      return rows[0] ? toStored(rows[0]) : undefined;
    },

    async list({ filter, scope, afterId, limit }) {
      const rows = await sql<DeviceRow[]>`
        SELECT * FROM devices
        WHERE ${afterId !== undefined ? sql`id > ${afterId}` : sql`true`}
          AND ${whereDeviceFilter(sql, filter)}
          AND ${whereScope(sql, scope)}
        ORDER BY id
        LIMIT ${limit}`;
      return rows.map((r) => toStored(r).device);
    },

    async count({ filter, scope, groupBy, limit }) {
      const where = sql`${whereDeviceFilter(sql, filter)} AND ${whereScope(sql, scope)}`;
      const [{ n }] = (await sql<{ n: string }[]>`SELECT count(*) AS n FROM devices WHERE ${where}`) as unknown as [{ n: string }];
      if (!groupBy) return { total: Number(n), groups: [] };
      const key =
        groupBy.field === "label"
          ? sql`labels->>${groupBy.key}`
          : groupBy.field === "online"
            ? sql`online::text`
            : groupBy.field === "kind"
              ? sql`kind`
              : sql`firmware_version`;
      const rows = await sql<{ value: string | null; n: string }[]>`
        SELECT ${key} AS value, count(*) AS n FROM devices WHERE ${where}
        GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ${limit}`;
      return { total: Number(n), groups: rows.map((r) => ({ value: r.value ?? undefined, count: Number(r.n) })) };
    },

    async update(device, expectedRevision, { desiredChanged, now }) {
      const id = parseDeviceName(device.name);
      const rows = await auditedChange(
        sql,
        (q) => q<DeviceRow[]>`
        UPDATE devices SET
          display_name = ${device.displayName},
          labels = ${q.json(device.labels)},
          owner = ${device.owner},
          firmware_version = ${device.firmwareVersion},
          desired = ${q.json(desiredJson(device))},
          desired_version = desired_version + ${desiredChanged ? 1 : 0},
          delivery_mode = ${modeName(device)},
          max_pending_tasks = ${device.deliveryPolicy?.maxPendingTasks ?? 0},
          update_time = ${now},
          revision = revision + 1
        WHERE id = ${id} AND revision = ${expectedRevision}
        RETURNING *`,
        { changed: (r) => r.length > 0 },
      );
      return rows[0] ? toStored(rows[0]) : undefined;
    },

    async delete(id, { expectedRevision, now, revocationReason }) {
      return withTransaction(sql, async (tx) => {
        // Shares of the device go with it: a device re-created under the same id starts unshared.
        const gone = await tx<{ id: string; uid: string }[]>`
          WITH gone AS (
            DELETE FROM devices
            WHERE id = ${id} ${expectedRevision !== undefined ? tx`AND revision = ${expectedRevision}` : tx``}
            RETURNING id, uid),
          unshared AS (DELETE FROM grants WHERE target_kind = 'device' AND target IN (SELECT id FROM gone))
          SELECT id, uid FROM gone`;
        if (gone.length === 0) return undefined;
        auditCall(tx);
        await tx`INSERT INTO device_deletions (device_id, device_uid, delete_time) VALUES (${id}, ${gone[0]!.uid}, ${now}) ON CONFLICT DO NOTHING`;
        // A separate statement (its own snapshot): a certificate whose insert held the device row
        // FOR SHARE until it committed is seen, and revoked, here.
        const revoked = await tx<{ serial_number: string; revoke_time: Date; revocation_reason: number }[]>`
          UPDATE certificates SET revoke_time = ${now}, revocation_reason = ${revocationReason}
          WHERE kind = 'device' AND device_id = ${id} AND revoke_time IS NULL
          RETURNING serial_number, revoke_time, revocation_reason`;
        return { revoked: revoked.map((r) => ({ serialNumber: r.serial_number, revokeTime: r.revoke_time, reason: r.revocation_reason })) };
      });
    },

    async deletions() {
      const rows = await sql<{ device_id: string; delete_time: Date }[]>`
        SELECT device_id, max(delete_time) AS delete_time FROM device_deletions GROUP BY device_id`;
      return rows.map((r) => ({ deviceId: r.device_id, deleteTime: r.delete_time }));
    },

    async setPresence(id, change, now, opts = {}) {
      const uplink = opts.uplink ?? false;
      // One statement: the row lock (prev) orders two replicas hearing the same presence, and only
      // a change of `online` is an event. A connect after the broker link was lost is the link
      // coming back, not the device (broker_restored).
      const rows = await sql<(DeviceRow & { changed: boolean })[]>`
        WITH prev AS (SELECT id, online, last_event FROM devices WHERE id = ${id} FOR UPDATE),
        ev AS (
          INSERT INTO connectivity_events (device_id, event_time, connected, reason, remote_address)
          SELECT id, ${now}, ${change.online},
                 CASE WHEN ${change.online} AND last_event->>'reason' = 'broker_lost' AND last_event->>'connected' = 'false'
                      THEN 'broker_restored' ELSE ${reasonOf(change)} END,
                 ${change.remoteAddress ?? ""}
          FROM prev WHERE online IS DISTINCT FROM ${change.online}
          RETURNING *)
        UPDATE devices d SET
          online = ${change.online},
          last_seen_time = CASE WHEN ${change.online} THEN GREATEST(d.last_seen_time, ${now}) ELSE d.last_seen_time END,
          last_uplink_time = CASE WHEN ${uplink} THEN GREATEST(d.last_uplink_time, ${now}) ELSE d.last_uplink_time END,
          silent = d.silent AND ${change.online} AND NOT ${uplink},
          last_event = COALESCE((SELECT ${lastEventJson(sql)} FROM ev), d.last_event)
        FROM prev WHERE d.id = prev.id
        RETURNING d.*, EXISTS (SELECT 1 FROM ev) AS changed`;
      return rows[0] ? { ...toStored(rows[0]), changed: rows[0].changed } : undefined;
    },

    async setFirmwareVersion(id, firmwareVersion) {
      const rows = await sql<DeviceRow[]>`
        UPDATE devices SET firmware_version = ${firmwareVersion}, revision = revision + 1
        WHERE id = ${id} AND firmware_version IS DISTINCT FROM ${firmwareVersion}
        RETURNING *`;
      return rows[0] ? toStored(rows[0]) : undefined;
    },

    async setAllOffline(now, reason) {
      // last_seen_time stays: it is when the device was last heard from, not when Tether lost it.
      const rows = await sql<DeviceRow[]>`
        WITH gone AS (SELECT id FROM devices WHERE online FOR UPDATE),
        ev AS (
          INSERT INTO connectivity_events (device_id, event_time, connected, reason)
          SELECT id, ${now}, false, ${reason} FROM gone
          RETURNING *)
        UPDATE devices d SET online = false, silent = false, last_event = ${lastEventJson(sql)}
        FROM ev WHERE d.id = ev.device_id
        RETURNING d.*`;
      return rows.map((r) => toStored(r).device);
    },

    async touch(id, now, opts = {}) {
      const uplink = opts.uplink ?? false;
      // `prev` reads the row as it was before this statement: whether it was silent until now.
      const rows = await sql<{ was_silent: boolean }[]>`
        WITH prev AS (SELECT silent FROM devices WHERE id = ${id})
        UPDATE devices SET
          last_seen_time = GREATEST(last_seen_time, ${now}),
          last_uplink_time = CASE WHEN ${uplink} THEN GREATEST(last_uplink_time, ${now}) ELSE last_uplink_time END,
          silent = silent AND NOT ${uplink}
        WHERE id = ${id}
        RETURNING (SELECT silent FROM prev) AND ${uplink} AS was_silent`;
      return rows[0]?.was_silent ?? false;
    },

    async markSilent(cutoff) {
      // Silent since the later of its last message and its connect: a device that connected and
      // said nothing yet has had its time to speak only from the connect on.
      const rows = await sql<DeviceRow[]>`
        UPDATE devices SET silent = true
        WHERE online AND NOT silent
          AND GREATEST(last_uplink_time, (last_event->>'time')::timestamptz) < ${cutoff}
        RETURNING *`;
      return rows.map((r) => toStored(r).device);
    },

    async setListening(id, until, now) {
      const rows = await sql`
        UPDATE devices SET listen_until_time = ${until}, last_seen_time = ${now}, last_uplink_time = ${now}, silent = false
        WHERE id = ${id} RETURNING id`;
      return rows.length > 0;
    },

    async clearListening(id, until) {
      await sql`UPDATE devices SET listen_until_time = NULL WHERE id = ${id} AND listen_until_time = ${until}`;
    },

    async applyReportedMany(items, now) {
      if (items.length === 0) return [];
      const rows = await sql<(DeviceRow & { n: string | number })[]>`
        UPDATE devices d SET reported = v.reported, reported_version = v.version, last_seen_time = ${now}, last_uplink_time = ${now}, silent = false
        FROM unnest(${items.map((i) => i.id)}::text[], ${items.map((i) => i.kindName)}::text[], ${items.map((i) => i.version)}::bigint[],
                    ${items.map((i) => i.reported as never)}::jsonb[]) WITH ORDINALITY AS v (id, kind, version, reported, n)
        WHERE d.id = v.id AND d.kind = v.kind AND d.reported_version < v.version
        RETURNING d.*, v.n`;
      const out: (StoredDevice | undefined)[] = items.map(() => undefined);
      for (const r of rows) out[Number(r.n) - 1] = toStored(r);
      return out;
    },

    async getMany(ids) {
      if (ids.length === 0) return [];
      const rows = await sql<DeviceRow[]>`SELECT * FROM devices WHERE id = ANY(${[...new Set(ids)]}::text[])`;
      const byId = new Map(rows.map((r) => [String(r.id), toStored(r)]));
      return ids.map((id) => byId.get(id));
    },

    async applyReported(id, version, reported, now) {
      const rows = await sql<DeviceRow[]>`
        UPDATE devices SET reported = ${sql.json(reported as JsonValue)}, reported_version = ${version}, last_seen_time = ${now},
          last_uplink_time = ${now}, silent = false
        WHERE id = ${id} AND reported_version < ${version}
        RETURNING *`;
      if (rows[0]) return toStored(rows[0]);
      const exists = await sql`SELECT 1 FROM devices WHERE id = ${id}`;
      return exists.length > 0 ? "stale" : "unknown";
    },
  };
}

const MODES: Record<number, string> = {
  [DeliveryPolicy_Mode.UNSPECIFIED]: "burst",
  [DeliveryPolicy_Mode.BURST]: "burst",
  [DeliveryPolicy_Mode.ONE_UNTIL_ACKNOWLEDGED]: "one_until_acknowledged",
  [DeliveryPolicy_Mode.ONE_UNTIL_COMPLETED]: "one_until_completed",
};

function modeName(d: Device): string {
  return MODES[d.deliveryPolicy?.mode ?? 0] ?? "burst";
}

/** Storage name → enum; exported for the task store's delivery snapshot. */
export function parseModeName(name: string): DeliveryPolicy_Mode {
  const entry = Object.entries(MODES).find(([k, v]) => v === name && Number(k) !== DeliveryPolicy_Mode.UNSPECIFIED);
  return entry ? (Number(entry[0]) as DeliveryPolicy_Mode) : DeliveryPolicy_Mode.BURST;
}

function isEmpty(v: JsonValue): boolean {
  return isEmptyObject(v);
}

/**
 * A caller's visible devices as a condition on `devices` (unqualified columns): owned, shared by
 * id, or matching a shared selector. Used by ListDevices and, as a subquery, by other lists.
 */
export function whereScope(sql: Sql, scope: DeviceScope | undefined) {
  if (!scope || scope.all) return sql`true`;
  const parts = [sql`owner = ${scope.owner}`];
  if (scope.deviceIds.length > 0) parts.push(sql`id = ANY(${scope.deviceIds}::text[])`);
  for (const f of scope.selectors) parts.push(sql`(${whereDeviceFilter(sql, f)})`);
  return sql`(${parts.reduce((acc, p) => sql`${acc} OR ${p}`)})`;
}

/**
 * A DeviceFilter (ListDevices syntax) as a condition on `devices` (unqualified columns). ListDevices,
 * share selectors and job targets all select devices with it, so they agree on what matches.
 */
export function whereDeviceFilter(sql: Sql, f: DeviceFilter) {
  // Parenthesised again, cheaply: an OR must never escape into the caller's AND (the scope).
  return sql`(${whereFilter(sql, f)})`;
}

function desiredJson(device: Device): JsonValue {
  const product = productByCase(device.kind.case!);
  const desired = (device.kind.value as { desired?: Message } | undefined)?.desired;
  return desired ? toJson(product.desiredSchema, desired as never) : {};
}

/** A `devices` row as the stored device (also used by the webhook outbox on row snapshots). */
export function toStored(row: DeviceRow): StoredDevice {
  const product = productByKindName(row.kind);
  if (!product) throw new Error(`device ${row.id} has unknown kind ${row.kind}`);
  const revision = Number(row.revision);
  // An empty JSON object means "never set": leave the message field unset rather than empty.
  const state = (schema: DescMessage, json: JsonValue) => (isEmptyObject(json) ? undefined : fromJson(schema, json, { ignoreUnknownFields: true }));
  const value = create(product.schema, {
    desired: state(product.desiredSchema, row.desired),
    reported: state(product.reportedSchema, row.reported),
  });
  const device = create(DeviceSchema, {
    name: deviceName(row.id),
    uid: row.uid,
    displayName: row.display_name,
    labels: row.labels,
    owner: row.owner,
    firmwareVersion: row.firmware_version,
    connectivity: {
      online: row.online,
      lastSeenTime: row.last_seen_time ? timestampFromDate(row.last_seen_time) : undefined,
      listenUntilTime: row.listen_until_time ? timestampFromDate(row.listen_until_time) : undefined,
      lastUplinkTime: row.last_uplink_time ? timestampFromDate(row.last_uplink_time) : undefined,
      // A row rebuilt from a JSON snapshot taken before the column existed has no `silent`: false, not null.
      silent: row.silent === true && row.online,
      lastEvent: row.last_event
        ? toConnectivityEvent({
            id: String(row.last_event.id),
            deviceId: row.id,
            connected: row.last_event.connected,
            reason: row.last_event.reason,
            remoteAddress: row.last_event.address,
            time: new Date(row.last_event.time),
          })
        : undefined,
    },
    createTime: timestampFromDate(row.create_time),
    updateTime: timestampFromDate(row.update_time),
    // Includes part of the uid so a re-created device never matches an etag of its predecessor.
    etag: `"${revision}-${row.uid.slice(0, 8)}"`,
    deliveryPolicy: { mode: parseModeName(row.delivery_mode), maxPendingTasks: row.max_pending_tasks },
    kind: { case: product.case, value } as Device["kind"],
  });
  return { device, revision, desiredVersion: Number(row.desired_version), reportedVersion: Number(row.reported_version) };
}

function isEmptyObject(v: JsonValue): boolean {
  return v !== null && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length === 0;
}

/** The `devices.last_event` copy of a connectivity_events row named `ev`. */
function lastEventJson(sql: Sql) {
  return sql`jsonb_build_object('id', ev.id, 'connected', ev.connected, 'reason', ev.reason, 'address', ev.remote_address, 'time', ev.event_time)`;
}

/** What a device filter sees of a `devices` row (or of a JSON snapshot of one, dates as strings). */
export function factsOf(row: DeviceRow): FilterSubject {
  const date = (d: Date | string | null) => (d === null || d === undefined ? undefined : new Date(d));
  return {
    id: row.id,
    kind: row.kind,
    owner: row.owner,
    labels: row.labels,
    online: row.online,
    displayName: row.display_name,
    firmwareVersion: row.firmware_version,
    createTime: date(row.create_time),
    lastSeenTime: date(row.last_seen_time),
    reported: row.reported,
    desired: row.desired,
  };
}
