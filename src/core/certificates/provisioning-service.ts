import { create } from "@bufbuild/protobuf";
import { randomUUID } from "node:crypto";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type Device, DeviceSchema } from "../../../gen/tether/v1/device_pb.js";
import { type ProvisioningTemplate, ProvisioningTemplateSchema } from "../../../gen/tether/v1/provisioning_pb.js";
import type {
  AddAllowedSerialNumbersRequest,
  CreateClaimCertificateRequest,
  CreateClaimCertificateResponse,
  CreateProvisioningTemplateRequest,
  ListProvisioningRecordsRequest,
  ListProvisioningRecordsResponse,
  ListProvisioningTemplatesRequest,
  ListProvisioningTemplatesResponse,
  ProvisionDeviceRequest,
  ProvisionDeviceResponse,
} from "../../../gen/tether/v1/provisioning_service_pb.js";
import { RevocationReason } from "../../../gen/tether/v1/certificate_pb.js";
import type { Clock } from "../clock.js";
import { deviceName, isValidDeviceId, truncate } from "../devices/device-name.js";
import { validateDeviceFields } from "../devices/device-validation.js";
import { AlreadyExistsError, InvalidArgumentError, NotFoundError, PermissionDeniedError, TetherError, Violations } from "../errors.js";
import type { CoreLogger } from "../log.js";
import { decodePageToken, encodePageToken, resolvePageSize } from "../page-token.js";
import type { ChangeFeed } from "../ports/index.js";
import { kindNameList, productByKindName } from "../products/index.js";
import { reservedIdProblem } from "../reserved-ids.js";
import { certificateName, parseTemplateName, templateName } from "./certificate-name.js";
import type { DeviceRepository } from "../ports/device-repository.js";
import type {
  CertificateIssuer,
  CertificateRepository,
  CrlSource,
  ProvisioningRecord,
  ProvisioningRepository,
  ProvisioningTemplateRecord,
  RevokedCertificate,
} from "../ports/certificates.js";
import { toCertificateProto } from "./certificate-record.js";
import { DEVICES_OU } from "./certificate-service.js";
import { checkCsr } from "./csr-policy.js";

/** OU of a claim certificate: the API lets it call ProvisionDevice and nothing else; the broker refuses it. */
export const CLAIMS_OU = "claims";
/** Serial numbers: printable ASCII without spaces or slashes, 1–64 characters. */
const SERIAL_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;

export interface ProvisioningServiceDeps {
  provisioning: ProvisioningRepository;
  certificates: CertificateRepository;
  devices: DeviceRepository;
  issuer: CertificateIssuer;
  crl: CrlSource & { refresh(): Promise<void> };
  revocations: ChangeFeed<RevokedCertificate>;
  clock: Clock;
  log: CoreLogger;
  defaultValidityDays: number;
  /** Announces a device created by provisioning (watchers, rules). */
  onDeviceCreated?: (device: Device) => void;
}

export type ProvisioningService = ReturnType<typeof createProvisioningService>;

/** The device id a serial number gets under a template: prefix + serial, lowercased, other characters → `-`. */
export function deviceIdForSerial(prefix: string, serial: string): string {
  return (prefix + serial.toLowerCase().replace(/[^a-z0-9-]/g, "-")).replace(/-+$/, "");
}

function serialAllowed(t: ProvisioningTemplateRecord, serial: string): boolean {
  if (t.allowedSerialNumbers.includes(serial)) return true;
  if (t.serialNumberPattern === "") return false;
  return new RegExp(`^(?:${t.serialNumberPattern})$`).test(serial);
}

/**
 * Zero-touch provisioning, self-hosted: templates (kind, labels, id prefix, allowed serials),
 * claim certificates shared by a batch, and the one exchange a claim certificate may make — serial
 * number + CSR for a registry entry and a device certificate, once per serial.
 */
export function createProvisioningService(d: ProvisioningServiceDeps) {
  const { provisioning, certificates, devices, issuer, clock, log } = d;

  function toProto(t: ProvisioningTemplateRecord): ProvisioningTemplate {
    return create(ProvisioningTemplateSchema, {
      name: templateName(t.id),
      deviceKind: t.deviceKind,
      deviceIdPrefix: t.deviceIdPrefix,
      labels: t.labels,
      allowedSerialNumbers: t.allowedSerialNumbers,
      serialNumberPattern: t.serialNumberPattern,
      certificateValidityDays: t.certificateValidityDays,
      createTime: timestampFromDate(t.createTime),
      provisionedCount: t.provisionedCount,
    });
  }

  async function getTemplate(id: string): Promise<ProvisioningTemplateRecord> {
    const t = await provisioning.getTemplate(id);
    if (!t) throw new NotFoundError(templateName(id));
    return t;
  }

  function checkSerials(serials: string[], field: string, v: Violations) {
    serials.forEach((s, i) => {
      if (!SERIAL_PATTERN.test(s))
        v.add(`${field}[${i}]`, `"${truncate(s, 64)}" must be 1-64 letters, digits, '.', '_', ':' or '-', starting with a letter or digit`);
    });
  }

  /**
   * A serial that already provisioned. The same device asking again with the same key (its answer
   * was lost) gets the same certificate back; any other key is refused. Never a second certificate.
   */
  async function replay(templateId: string, earlier: ProvisioningRecord, csr: string): Promise<ProvisionDeviceResponse> {
    const cert = await certificates.get(earlier.certificateSerial);
    const stored = await devices.get(earlier.deviceId);
    if (!cert || !stored || cert.revokeTime || !issuer.samePublicKey(csr, cert.certificatePem)) {
      throw new AlreadyExistsError(`provisioning of serial number ${earlier.serialNumber}`);
    }
    log.info(
      { templateId, serialNumber: earlier.serialNumber, deviceId: earlier.deviceId },
      "provisioning repeated with the same key: same certificate returned",
    );
    return {
      $typeName: "tether.v1.ProvisionDeviceResponse",
      device: stored.device,
      certificate: toCertificateProto(cert, clock.now()),
      caCertificatePem: issuer.caCertificatePem,
    };
  }

  return {
    async createTemplate(req: CreateProvisioningTemplateRequest): Promise<ProvisioningTemplate> {
      const input = req.provisioningTemplate;
      if (!input) throw InvalidArgumentError.field("provisioning_template", "is required");
      const v = new Violations();
      if (!isValidDeviceId(req.provisioningTemplateId))
        v.add("provisioning_template_id", "must be 1-63 lowercase letters, digits or hyphens, starting with a letter");
      else {
        // The template id is its claim certificates' CN (and broker user name on Mosquitto/RabbitMQ).
        const reserved = reservedIdProblem(req.provisioningTemplateId);
        if (reserved) v.add("provisioning_template_id", reserved);
      }
      if (!productByKindName(input.deviceKind))
        v.add("provisioning_template.device_kind", `"${truncate(input.deviceKind, 32)}" is not a product kind (${kindNameList()})`);
      if (input.deviceIdPrefix !== "" && !/^[a-z][a-z0-9-]{0,31}$/.test(input.deviceIdPrefix))
        v.add("provisioning_template.device_id_prefix", "must be up to 32 lowercase letters, digits or hyphens, starting with a letter");
      if (input.deviceIdPrefix === "") v.add("provisioning_template.device_id_prefix", 'is required (device ids must start with a letter), e.g. "kitchen-"');
      else if (reservedIdProblem(`${input.deviceIdPrefix}x`))
        v.add("provisioning_template.device_id_prefix", `${reservedIdProblem(`${input.deviceIdPrefix}x`)}: every id it hands out would be reserved`);
      checkSerials(input.allowedSerialNumbers, "provisioning_template.allowed_serial_numbers", v);
      if (input.serialNumberPattern !== "") {
        try {
          new RegExp(input.serialNumberPattern);
        } catch {
          v.add("provisioning_template.serial_number_pattern", "is not a valid regular expression");
        }
      }
      if (input.allowedSerialNumbers.length === 0 && input.serialNumberPattern === "")
        v.add("provisioning_template.allowed_serial_numbers", "set an allow-list or a serial_number_pattern: a template allows nothing by default");
      if (input.certificateValidityDays < 0 || input.certificateValidityDays > 3650)
        v.add("provisioning_template.certificate_validity_days", "must be between 0 (default) and 3650");
      validateDeviceFields(create(DeviceSchema, { labels: input.labels }), "provisioning_template", v, new Set(["labels"]));
      v.throwIfAny();
      // Device ids and template ids are disjoint namespaces: a claim certificate (CN = template id)
      // must never be mistaken for a device's by a broker that only reads the CN.
      if (await devices.get(req.provisioningTemplateId)) {
        throw InvalidArgumentError.field(
          "provisioning_template_id",
          `"${req.provisioningTemplateId}" is the id of ${deviceName(req.provisioningTemplateId)}: device ids and template ids are disjoint`,
        );
      }
      const rec: ProvisioningTemplateRecord = {
        id: req.provisioningTemplateId,
        deviceKind: input.deviceKind,
        deviceIdPrefix: input.deviceIdPrefix,
        labels: input.labels,
        allowedSerialNumbers: [...new Set(input.allowedSerialNumbers)],
        serialNumberPattern: input.serialNumberPattern,
        certificateValidityDays: input.certificateValidityDays,
        createTime: clock.now(),
        provisionedCount: 0,
      };
      await provisioning.insertTemplate(rec);
      return toProto(rec);
    },

    getTemplate: async (name: string) => toProto(await getTemplate(parseTemplateName(name))),

    async listTemplates(req: ListProvisioningTemplatesRequest): Promise<ListProvisioningTemplatesResponse> {
      const limit = resolvePageSize(req.pageSize);
      const after = decodePageToken(req.pageToken, "templates");
      const rows = await provisioning.listTemplates(after, limit + 1);
      const page = rows.slice(0, limit);
      return {
        $typeName: "tether.v1.ListProvisioningTemplatesResponse",
        provisioningTemplates: page.map(toProto),
        nextPageToken: rows.length > limit ? encodePageToken(page.at(-1)!.id, "templates") : "",
      };
    },

    async addSerialNumbers(req: AddAllowedSerialNumbersRequest): Promise<ProvisioningTemplate> {
      const id = parseTemplateName(req.name);
      const v = new Violations();
      if (req.serialNumbers.length === 0) v.add("serial_numbers", "is empty");
      checkSerials(req.serialNumbers, "serial_numbers", v);
      v.throwIfAny();
      const t = await provisioning.addSerialNumbers(id, [...new Set(req.serialNumbers)]);
      if (!t) throw new NotFoundError(templateName(id));
      return toProto(t);
    },

    async deleteTemplate(name: string): Promise<void> {
      const id = parseTemplateName(name);
      await getTemplate(id);
      // The batch's claim certificates become useless anyway; revoking says so in the CRL too.
      const revoked = await certificates.revokeClaims(id, RevocationReason.CESSATION_OF_OPERATION, clock.now());
      for (const r of revoked) d.revocations.publish({ serialNumber: r.serialNumber, revokeTime: r.revokeTime!, reason: r.revocationReason ?? 0 });
      if (revoked.length > 0) await d.crl.refresh();
      await provisioning.deleteTemplate(id);
      log.info({ templateId: id, claimsRevoked: revoked.length }, "provisioning template deleted");
    },

    async createClaimCertificate(req: CreateClaimCertificateRequest): Promise<CreateClaimCertificateResponse> {
      const id = parseTemplateName(req.parent, "parent");
      await getTemplate(id);
      // A template made before the reserved names existed gets no claim certificate under one.
      const reserved = reservedIdProblem(id);
      if (reserved) throw InvalidArgumentError.field("parent", `${reserved}: no claim certificate is issued for it`);
      if (req.validityDays < 0 || req.validityDays > 3650) throw InvalidArgumentError.field("validity_days", "must be between 0 (default) and 3650");
      const { certificate, privateKeyPem } = await issuer.issue({ commonName: id, organizationalUnit: CLAIMS_OU, validityDays: req.validityDays || 365 });
      await certificates.insert({
        serialNumber: certificate.serialNumber,
        kind: "claim",
        templateId: id,
        subject: certificate.subject,
        certificatePem: certificate.certificatePem,
        origin: "claim",
        notBefore: certificate.notBefore,
        notAfter: certificate.notAfter,
        createTime: clock.now(),
      });
      log.info({ templateId: id, serialNumber: certificate.serialNumber }, "claim certificate issued");
      return {
        $typeName: "tether.v1.CreateClaimCertificateResponse",
        certificatePem: certificate.certificatePem,
        privateKeyPem: privateKeyPem ?? "",
        serialNumber: certificate.serialNumber,
        caCertificatePem: issuer.caCertificatePem,
      };
    },

    async listRecords(req: ListProvisioningRecordsRequest): Promise<ListProvisioningRecordsResponse> {
      const id = parseTemplateName(req.parent, "parent");
      const limit = resolvePageSize(req.pageSize);
      const after = decodePageToken(req.pageToken, `records|${id}`);
      const rows = await provisioning.listRecords(id, after, limit + 1);
      const page = rows.slice(0, limit);
      return {
        $typeName: "tether.v1.ListProvisioningRecordsResponse",
        provisioningRecords: page.map((r) => ({
          $typeName: "tether.v1.ProvisioningRecord",
          serialNumber: r.serialNumber,
          device: deviceName(r.deviceId),
          certificate: certificateName(r.deviceId, r.certificateSerial),
          createTime: timestampFromDate(r.createTime),
        })),
        nextPageToken: rows.length > limit ? encodePageToken(page.at(-1)!.serialNumber, `records|${id}`) : "",
      };
    },

    /** The claim certificate's one permitted call; `templateId` comes from that certificate's CN. */
    async provisionDevice(templateId: string, req: ProvisionDeviceRequest): Promise<ProvisionDeviceResponse> {
      const serial = req.serialNumber;
      try {
        if (!SERIAL_PATTERN.test(serial))
          throw InvalidArgumentError.field("serial_number", "must be 1-64 letters, digits, '.', '_', ':' or '-', starting with a letter or digit");
        if (req.csr === "") throw InvalidArgumentError.field("csr", "is required: the device generates its key and sends a CSR");
        const t = await provisioning.getTemplate(templateId);
        if (!t) throw new PermissionDeniedError(`the claim certificate's template ${templateId} no longer exists`);
        if (!serialAllowed(t, serial)) throw new PermissionDeniedError(`serial number ${serial} is not allowed by ${templateName(t.id)}`);
        const deviceId = deviceIdForSerial(t.deviceIdPrefix, serial);
        if (!isValidDeviceId(deviceId))
          throw InvalidArgumentError.field("serial_number", `gives the device id "${truncate(deviceId, 80)}", which is not valid`);
        const reserved = reservedIdProblem(deviceId);
        if (reserved) throw InvalidArgumentError.field("serial_number", `gives the device id ${reserved}`);
        const namesake = await provisioning.templateFor(deviceId);
        if (namesake?.exact)
          throw InvalidArgumentError.field(
            "serial_number",
            `gives the device id "${deviceId}", which is the id of ${templateName(namesake.templateId)}: device ids and template ids are disjoint`,
          );
        await checkCsr(issuer, req.csr, [deviceId, serial]);
        const earlier = await provisioning.getRecord(t.id, serial);
        if (earlier) return replay(t.id, earlier, req.csr);

        const product = productByKindName(t.deviceKind)!;
        const device = create(DeviceSchema, {
          name: deviceName(deviceId),
          uid: randomUUID(),
          displayName: serial,
          labels: {
            ...t.labels,
            "serial-number": serial
              .toLowerCase()
              .replace(/[^a-z0-9._-]/g, "-")
              .slice(0, 63),
          },
          kind: { case: product.case, value: create(product.schema) } as Device["kind"],
        });
        const { certificate } = await issuer.issue({
          csrPem: req.csr,
          commonName: deviceId,
          organizationalUnit: DEVICES_OU,
          validityDays: t.certificateValidityDays || d.defaultValidityDays,
        });
        const now = clock.now();
        const record = {
          serialNumber: certificate.serialNumber,
          kind: "device" as const,
          deviceId,
          deviceUid: device.uid,
          templateId: t.id,
          subject: certificate.subject,
          certificatePem: certificate.certificatePem,
          origin: "provisioning" as const,
          notBefore: certificate.notBefore,
          notAfter: certificate.notAfter,
          createTime: now,
        };
        const res = await provisioning.provision({
          record: { templateId: t.id, serialNumber: serial, deviceId, certificateSerial: certificate.serialNumber, createTime: now },
          device,
          certificate: record,
        });
        if (res === "serial_taken") {
          const winner = await provisioning.getRecord(t.id, serial);
          if (winner) return replay(t.id, winner, req.csr);
          throw new AlreadyExistsError(`provisioning of serial number ${serial}`);
        }
        if (res === "device_exists") throw new AlreadyExistsError(deviceName(deviceId));
        log.info({ templateId: t.id, serialNumber: serial, deviceId, certificate: certificate.serialNumber }, "device provisioned");
        d.onDeviceCreated?.(device);
        return {
          $typeName: "tether.v1.ProvisionDeviceResponse",
          device,
          certificate: toCertificateProto(record, now),
          caCertificatePem: issuer.caCertificatePem,
        };
      } catch (err) {
        if (err instanceof TetherError)
          log.warn({ templateId, serialNumber: truncate(serial, 64), code: err.code, reason: err.message }, "provisioning refused");
        throw err;
      }
    },
  };
}
