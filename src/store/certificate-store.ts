import type postgres from "postgres";
import type { CertificateOrigin, CertificatePage, CertificateRecord, CertificateRepository } from "../core/ports/certificates.js";
import { deviceName } from "../core/devices/device-name.js";
import { NotFoundError } from "../core/errors.js";
import type { Sql } from "./database.js";
import { auditedChange, withTransaction } from "./transaction.js";
import { auditCall } from "./audit-context.js";
import { toCertificateProto } from "../core/certificates/certificate-record.js";

export interface CertificateRow {
  serial_number: string;
  kind: "device" | "claim" | "user";
  device_id: string | null;
  device_uid: string | null;
  user_name: string | null;
  template_id: string | null;
  subject: string;
  certificate_pem: string;
  origin: string;
  previous_serial: string | null;
  request_id: string | null;
  not_before: Date;
  not_after: Date;
  create_time: Date;
  revoke_time: Date | null;
  revocation_reason: number | null;
}

/** CertificateRepository on PostgreSQL (or PGlite). */
export function createCertificateStore(sql: Sql): CertificateRepository {
  async function list(where: postgres.Fragment, { after, limit }: CertificatePage) {
    const rows = await sql<CertificateRow[]>`
      SELECT * FROM certificates
      WHERE ${where}
        ${after ? sql`AND (create_time, serial_number) > (${after.createTime}, ${after.serialNumber})` : sql``}
      ORDER BY create_time, serial_number
      LIMIT ${limit}`;
    return rows.map(fromRow);
  }

  return {
    async insert(rec) {
      return withTransaction(sql, async (tx) => {
        if (rec.kind === "device") {
          // FOR SHARE holds off a concurrent DeleteDevice until this commits; its revocation,
          // a later statement of its own transaction, then sees (and revokes) this certificate.
          const live = await tx`SELECT 1 FROM devices WHERE id = ${rec.deviceId ?? null} AND uid = ${rec.deviceUid ?? null} FOR SHARE`;
          if (live.length === 0) throw new NotFoundError(deviceName(rec.deviceId ?? ""));
        }
        const rows = await tx<CertificateRow[]>`
          INSERT INTO certificates ${tx(toRow(rec) as never)}
          ON CONFLICT (device_id, request_id) WHERE request_id IS NOT NULL DO NOTHING
          RETURNING *`;
        if (rows[0]) {
          const stored = fromRow(rows[0]);
          auditCall(tx, toCertificateProto(stored, stored.notBefore).name);
          return stored;
        }
        const earlier = await tx<
          CertificateRow[]
        >`SELECT * FROM certificates WHERE device_id = ${rec.deviceId ?? null} AND request_id = ${rec.requestId ?? null}`;
        if (!earlier[0]) throw new Error("certificate insert conflicted but no earlier row exists");
        return fromRow(earlier[0]);
      });
    },

    async record(rec) {
      await sql`INSERT INTO certificates ${sql(toRow(rec) as never)} ON CONFLICT (serial_number) DO NOTHING`;
      const rows = await sql<CertificateRow[]>`SELECT * FROM certificates WHERE serial_number = ${rec.serialNumber}`;
      return fromRow(rows[0]!);
    },

    async get(serial) {
      const rows = await sql<CertificateRow[]>`SELECT * FROM certificates WHERE serial_number = ${serial}`;
      return rows[0] ? fromRow(rows[0]) : undefined;
    },

    listByDevice: (deviceUid, page) => list(sql`device_uid = ${deviceUid}`, page),

    listByUser: (userName, page) => list(sql`kind = 'user' AND user_name = ${userName}`, page),

    async countActive(deviceUid, now) {
      const rows = await sql<{ n: number }[]>`
        SELECT count(*)::int AS n FROM certificates WHERE device_uid = ${deviceUid} AND revoke_time IS NULL AND not_after > ${now}`;
      return rows[0]?.n ?? 0;
    },

    async newestActive(deviceUid, now) {
      const rows = await sql<CertificateRow[]>`
        SELECT * FROM certificates WHERE device_uid = ${deviceUid} AND revoke_time IS NULL AND not_after > ${now}
        ORDER BY not_after DESC, serial_number LIMIT 1`;
      return rows[0] ? fromRow(rows[0]) : undefined;
    },

    async revoke(serial, reason, now) {
      const updated = await auditedChange(
        sql,
        (q) => q<CertificateRow[]>`
        UPDATE certificates SET revoke_time = ${now}, revocation_reason = ${reason}
        WHERE serial_number = ${serial} AND revoke_time IS NULL
        RETURNING *`,
        { changed: (r) => r.length > 0 },
      );
      if (updated[0]) return { record: fromRow(updated[0]), changed: true };
      const rows = await sql<CertificateRow[]>`SELECT * FROM certificates WHERE serial_number = ${serial}`;
      return rows[0] ? { record: fromRow(rows[0]), changed: false } : undefined;
    },

    async revokeClaims(templateId, reason, now) {
      const rows = await sql<CertificateRow[]>`
        UPDATE certificates SET revoke_time = ${now}, revocation_reason = ${reason}
        WHERE kind = 'claim' AND template_id = ${templateId} AND revoke_time IS NULL
        RETURNING *`;
      return rows.map(fromRow);
    },

    async listRevoked(now) {
      const rows = await sql<CertificateRow[]>`
        SELECT * FROM certificates WHERE revoke_time IS NOT NULL AND not_after > ${now} ORDER BY revoke_time, serial_number`;
      return rows.map(fromRow);
    },

    async expiringSoon(before, warnedSince, now, limit) {
      // The newest active certificate of each device; a device that already renewed is not warned.
      const rows = await sql<CertificateRow[]>`
        SELECT * FROM (
          SELECT DISTINCT ON (device_id) *
          FROM certificates
          WHERE kind = 'device' AND revoke_time IS NULL AND not_after > ${now}
          ORDER BY device_id, not_after DESC
        ) newest
        WHERE not_after < ${before} AND (expiry_warning_time IS NULL OR expiry_warning_time < ${warnedSince})
        ORDER BY not_after
        LIMIT ${limit}`;
      return rows.map(fromRow);
    },

    async markWarned(serials, now) {
      if (serials.length === 0) return;
      await sql`UPDATE certificates SET expiry_warning_time = ${now} WHERE serial_number = ANY(${serials})`;
    },
  };
}

export function toRow(rec: CertificateRecord) {
  return {
    serial_number: rec.serialNumber,
    kind: rec.kind,
    device_id: rec.deviceId ?? null,
    device_uid: rec.deviceUid ?? null,
    user_name: rec.userName ?? null,
    template_id: rec.templateId ?? null,
    subject: rec.subject,
    certificate_pem: rec.certificatePem,
    origin: rec.origin,
    previous_serial: rec.previousSerial ?? null,
    request_id: rec.requestId ?? null,
    not_before: rec.notBefore,
    not_after: rec.notAfter,
    create_time: rec.createTime,
    revoke_time: rec.revokeTime ?? null,
    revocation_reason: rec.revocationReason ?? null,
  };
}

export function fromRow(r: CertificateRow): CertificateRecord {
  return {
    serialNumber: r.serial_number,
    kind: r.kind,
    deviceId: r.device_id ?? undefined,
    deviceUid: r.device_uid ?? undefined,
    userName: r.user_name ?? undefined,
    templateId: r.template_id ?? undefined,
    subject: r.subject,
    certificatePem: r.certificate_pem,
    origin: r.origin as CertificateOrigin,
    previousSerial: r.previous_serial ?? undefined,
    requestId: r.request_id ?? undefined,
    notBefore: r.not_before,
    notAfter: r.not_after,
    createTime: r.create_time,
    revokeTime: r.revoke_time ?? undefined,
    revocationReason: r.revocation_reason ?? undefined,
  };
}
