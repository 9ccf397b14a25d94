import { AlreadyExistsError } from "../core/errors.js";
import { type FirmwareRecord, firmwareName } from "../core/firmware/firmware-record.js";
import type { FirmwareReference, FirmwareRepository } from "../core/ports/firmware.js";
import type { Sql } from "./database.js";
import { auditedChange, withTransaction } from "./transaction.js";

type Row = Record<string, unknown>;

/** Chunk rows fetched per query while streaming: at most this many MiB in memory per download. */
const ROWS_PER_READ = 2;

/**
 * FirmwareRepository on PostgreSQL/PGlite. The bytes live in `firmware_chunks`, one row per
 * uploaded chunk keyed by its start offset, so any replica serves any image and a ranged read
 * starts at the row holding its first byte.
 */
export function createFirmwareStore(sql: Sql): FirmwareRepository {
  return {
    async insert(r) {
      const rows = await auditedChange(
        sql,
        (q) => q<Row[]>`
        INSERT INTO firmwares (id, kind, version, release_notes, hardware_labels, state, size_bytes, creator, create_time, revision)
        VALUES (${r.id}, ${r.kind}, ${r.version}, ${r.releaseNotes}, ${r.hardwareLabels}::text[], 'UPLOADING', 0, ${r.creator}, ${r.createTime}, 1)
        ON CONFLICT DO NOTHING RETURNING *`,
        { changed: (x) => x.length > 0, resource: () => firmwareName(r.id) },
      );
      if (rows[0]) return fromRow(rows[0]);
      const [taken] = await sql<{ id: string }[]>`SELECT id FROM firmwares WHERE kind = ${r.kind} AND version = ${r.version}`;
      if (taken && taken.id !== r.id) throw new AlreadyExistsError(`${r.kind} firmware version ${r.version} (${firmwareName(taken.id)})`);
      throw new AlreadyExistsError(firmwareName(r.id));
    },

    async get(id) {
      const [row] = await sql<Row[]>`SELECT * FROM firmwares WHERE id = ${id}`;
      return row ? fromRow(row) : undefined;
    },

    async list({ kind, afterId, limit }) {
      const rows = await sql<Row[]>`
        SELECT * FROM firmwares
        WHERE ${kind ? sql`kind = ${kind}` : sql`true`} AND ${afterId ? sql`id > ${afterId}` : sql`true`}
        ORDER BY id LIMIT ${limit}`;
      return rows.map(fromRow);
    },

    async appendChunk(id, offset, data, maxBytes) {
      return withTransaction(sql, async (tx) => {
        const [f] = await tx<{ state: string; size_bytes: string }[]>`SELECT state, size_bytes FROM firmwares WHERE id = ${id} FOR UPDATE`;
        if (!f) return { ok: false, reason: "missing", receivedBytes: 0 } as const;
        const received = Number(f.size_bytes);
        if (f.state !== "UPLOADING") return { ok: false, reason: "published", receivedBytes: received } as const;
        if (offset !== received) {
          // The exact last chunk again (its answer was lost): already stored, nothing to do.
          const [last] = await tx<{ data: Uint8Array }[]>`SELECT data FROM firmware_chunks WHERE firmware_id = ${id} AND start_offset = ${offset}`;
          if (last && offset + last.data.length === received && Buffer.from(last.data).equals(Buffer.from(data))) {
            return { ok: true, receivedBytes: received, retry: true } as const;
          }
          return { ok: false, reason: "offset", receivedBytes: received } as const;
        }
        if (received + data.length > maxBytes) return { ok: false, reason: "too-large", receivedBytes: received } as const;
        const size = received + data.length;
        await auditedChange(tx, async (q) => {
          await q`INSERT INTO firmware_chunks (firmware_id, start_offset, data) VALUES (${id}, ${offset}, ${Buffer.from(data.buffer, data.byteOffset, data.length)})`;
          await q`UPDATE firmwares SET size_bytes = ${size}, revision = revision + 1 WHERE id = ${id}`;
          return true;
        });
        return { ok: true, receivedBytes: size, retry: false } as const;
      });
    },

    async *read(id, start, end) {
      if (end <= start) return;
      // The row holding byte `start`, then on in offset order, a couple of rows per query.
      const [first] = await sql<{ s: string | null }[]>`
        SELECT max(start_offset) AS s FROM firmware_chunks WHERE firmware_id = ${id} AND start_offset <= ${start}`;
      let from = first?.s === null || first?.s === undefined ? 0 : Number(first.s);
      let pos = start;
      while (pos < end) {
        const rows = await sql<{ start_offset: string; data: Uint8Array }[]>`
          SELECT start_offset, data FROM firmware_chunks WHERE firmware_id = ${id} AND start_offset >= ${from}
          ORDER BY start_offset LIMIT ${ROWS_PER_READ}`;
        if (rows.length === 0) return;
        for (const row of rows) {
          const s = Number(row.start_offset);
          const a = Math.max(pos, s) - s;
          const b = Math.min(end, s + row.data.length) - s;
          if (b > a) {
            yield row.data.subarray(a, b);
            pos = s + b;
          }
          from = s + row.data.length;
          if (pos >= end) return;
        }
      }
    },

    async publish(r) {
      const rows = await auditedChange(
        sql,
        (q) => q<Row[]>`
        UPDATE firmwares SET state = 'PUBLISHED', sha256 = ${r.sha256}, manifest = ${bytes(r.manifest)}, manifest_signature = ${bytes(r.manifestSignature)},
          signing_key_id = ${r.signingKeyId}, publish_time = ${r.publishTime ?? null}, revision = ${r.revision}
        WHERE id = ${r.id} AND state = 'UPLOADING' AND revision = ${r.revision - 1} AND size_bytes = ${r.sizeBytes} RETURNING *`,
        { changed: (x) => x.length > 0 },
      );
      return rows[0] ? fromRow(rows[0]) : undefined;
    },

    async delete(id, revision) {
      const rows = await auditedChange(
        sql,
        (q) => q`DELETE FROM firmwares WHERE id = ${id} AND ${revision === undefined ? q`true` : q`revision = ${revision}`} RETURNING id`,
        { changed: (x) => x.length > 0 },
      );
      return rows.length > 0;
    },
  };
}

/** Devices that report running the firmware's version (`Device.firmware_version`, from their Hello). */
export function devicesRunningFirmware(sql: Sql): FirmwareReference {
  return {
    async find(f) {
      const rows = await sql<{ id: string }[]>`SELECT id FROM devices WHERE kind = ${f.kind} AND firmware_version = ${f.version} ORDER BY id LIMIT 1`;
      return rows[0] ? `devices/${rows[0].id} reports running ${f.kind} ${f.version}` : undefined;
    },
  };
}

const bytes = (b: Uint8Array | undefined) => (b ? Buffer.from(b.buffer, b.byteOffset, b.length) : null);

function fromRow(r: Row): FirmwareRecord {
  const buf = (v: unknown) => (v === null || v === undefined ? undefined : new Uint8Array(v as Uint8Array));
  return {
    id: String(r.id),
    kind: String(r.kind),
    version: String(r.version),
    releaseNotes: String(r.release_notes),
    hardwareLabels: (r.hardware_labels as string[]) ?? [],
    state: r.state === "PUBLISHED" ? "PUBLISHED" : "UPLOADING",
    sizeBytes: Number(r.size_bytes),
    sha256: String(r.sha256),
    manifest: buf(r.manifest),
    manifestSignature: buf(r.manifest_signature),
    signingKeyId: String(r.signing_key_id),
    creator: String(r.creator),
    createTime: r.create_time as Date,
    publishTime: (r.publish_time as Date | null) ?? undefined,
    revision: Number(r.revision),
  };
}
