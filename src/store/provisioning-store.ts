import type { ProvisioningRecord, ProvisioningRepository, ProvisioningTemplateRecord } from "../core/ports/certificates.js";
import { templateName } from "../core/certificates/certificate-name.js";
import { AlreadyExistsError } from "../core/errors.js";
import { toRow } from "./certificate-store.js";
import type { Sql } from "./database.js";
import { createDeviceStore } from "./device-store.js";
import { auditedChange, withTransaction } from "./transaction.js";
import { auditCall } from "./audit-context.js";

interface TemplateRow {
  id: string;
  device_kind: string;
  device_id_prefix: string;
  labels: Record<string, string>;
  allowed_serial_numbers: string[];
  serial_number_pattern: string;
  certificate_validity_days: number;
  create_time: Date;
  provisioned_count: number;
}

interface RecordRow {
  template_id: string;
  serial_number: string;
  device_id: string;
  certificate_serial: string;
  create_time: Date;
}

const WITH_COUNT = (sql: Sql) => sql`
  SELECT t.*, (SELECT count(*)::int FROM provisioning_records r WHERE r.template_id = t.id) AS provisioned_count
  FROM provisioning_templates t`;

/** ProvisioningRepository on PostgreSQL (or PGlite). */
export function createProvisioningStore(sql: Sql): ProvisioningRepository {
  return {
    async insertTemplate(t) {
      const rows = await auditedChange(
        sql,
        (q) => q`
        INSERT INTO provisioning_templates (id, device_kind, device_id_prefix, labels, allowed_serial_numbers, serial_number_pattern, certificate_validity_days, create_time)
        VALUES (${t.id}, ${t.deviceKind}, ${t.deviceIdPrefix}, ${q.json(t.labels)}, ${t.allowedSerialNumbers}, ${t.serialNumberPattern}, ${t.certificateValidityDays}, ${t.createTime})
        ON CONFLICT (id) DO NOTHING RETURNING id`,
        { changed: (r) => r.length > 0, resource: () => templateName(t.id) },
      );
      if (rows.length === 0) throw new AlreadyExistsError(templateName(t.id));
    },

    async getTemplate(id) {
      const rows = await sql<TemplateRow[]>`${WITH_COUNT(sql)} WHERE t.id = ${id}`;
      return rows[0] ? fromRow(rows[0]) : undefined;
    },

    async listTemplates(afterId, limit) {
      const rows = await sql<
        TemplateRow[]
      >`${WITH_COUNT(sql)} WHERE ${afterId !== undefined ? sql`t.id > ${afterId}` : sql`true`} ORDER BY t.id LIMIT ${limit}`;
      return rows.map(fromRow);
    },

    async addSerialNumbers(id, serials) {
      const rows = await auditedChange(
        sql,
        (q) => q`
        UPDATE provisioning_templates
        SET allowed_serial_numbers = ARRAY(SELECT DISTINCT unnest(allowed_serial_numbers || ${serials}::text[]) ORDER BY 1)
        WHERE id = ${id} RETURNING id`,
        { changed: (r) => r.length > 0 },
      );
      return rows.length > 0 ? this.getTemplate(id) : undefined;
    },

    async deleteTemplate(id) {
      const rows = await auditedChange(sql, (q) => q`DELETE FROM provisioning_templates WHERE id = ${id} RETURNING id`, { changed: (r) => r.length > 0 });
      return rows.length > 0;
    },

    async getRecord(templateId, serial) {
      const rows = await sql<RecordRow[]>`SELECT * FROM provisioning_records WHERE template_id = ${templateId} AND serial_number = ${serial}`;
      return rows[0] ? toRecord(rows[0]) : undefined;
    },

    async provision({ record, device, certificate }) {
      return withTransaction(sql, async (tx) => {
        const claimed = await tx`
          INSERT INTO provisioning_records (template_id, serial_number, device_id, certificate_serial, create_time)
          VALUES (${record.templateId}, ${record.serialNumber}, ${record.deviceId}, ${record.certificateSerial}, ${record.createTime})
          ON CONFLICT DO NOTHING RETURNING serial_number`;
        if (claimed.length === 0) return "serial_taken" as const;
        auditCall(tx, `provisioningTemplates/${record.templateId}/records/${record.serialNumber}`);
        try {
          await createDeviceStore(tx).insert(device, record.createTime);
        } catch (err) {
          if (err instanceof AlreadyExistsError) {
            throw new DeviceExists();
          }
          throw err;
        }
        await tx`INSERT INTO certificates ${tx(toRow(certificate) as never)}`;
        return "ok" as const;
      }).catch((err: unknown) => {
        if (err instanceof DeviceExists) return "device_exists" as const;
        throw err;
      });
    },

    async templateFor(deviceId) {
      const rows = await sql<{ id: string; device_id_prefix: string; exact: boolean }[]>`
        SELECT id, device_id_prefix, id = ${deviceId} AS exact FROM provisioning_templates
        WHERE id = ${deviceId} OR (device_id_prefix <> '' AND left(${deviceId}, length(device_id_prefix)) = device_id_prefix)
        ORDER BY exact DESC, id LIMIT 1`;
      const r = rows[0];
      return r ? { templateId: r.id, prefix: r.device_id_prefix, exact: r.exact } : undefined;
    },

    async listRecords(templateId, afterSerial, limit) {
      const rows = await sql<RecordRow[]>`
        SELECT * FROM provisioning_records
        WHERE template_id = ${templateId} ${afterSerial !== undefined ? sql`AND serial_number > ${afterSerial}` : sql``}
        ORDER BY serial_number LIMIT ${limit}`;
      return rows.map(toRecord);
    },
  };
}

function toRecord(r: RecordRow): ProvisioningRecord {
  return {
    templateId: r.template_id,
    serialNumber: r.serial_number,
    deviceId: r.device_id,
    certificateSerial: r.certificate_serial,
    createTime: r.create_time,
  };
}

/** Thrown inside the transaction so it rolls back the serial claim too. */
class DeviceExists extends Error {}

function fromRow(r: TemplateRow): ProvisioningTemplateRecord {
  return {
    id: r.id,
    deviceKind: r.device_kind,
    deviceIdPrefix: r.device_id_prefix,
    labels: r.labels,
    allowedSerialNumbers: r.allowed_serial_numbers,
    serialNumberPattern: r.serial_number_pattern,
    certificateValidityDays: r.certificate_validity_days,
    createTime: r.create_time,
    provisionedCount: r.provisioned_count,
  };
}
