import type {
  CreateCertificateRequest,
  CreateCertificateResponse,
  ListCertificatesRequest,
  ListCertificatesResponse,
  RenewCertificateRequest,
  RenewCertificateResponse,
  RevokeCertificateRequest,
} from "../../../gen/tether/v1/certificate_service_pb.js";
import { type Certificate, Certificate_State, RevocationReason } from "../../../gen/tether/v1/certificate_pb.js";
import type { Clock } from "../clock.js";
import type { DeviceRepository } from "../devices/device-repository.js";
import { deviceName, parseDeviceName } from "../devices/device-name.js";
import { FailedPreconditionError, InvalidArgumentError, NotFoundError, TetherError } from "../errors.js";
import type { CoreLogger } from "../log.js";
import { decodePageToken, encodePageToken, resolvePageSize } from "../page-token.js";
import type { ChangeFeed } from "../ports.js";
import { certificateName, parseCertificateName } from "./certificate-name.js";
import type { CertificateIssuer, CertificateOrigin, CertificateRecord, CertificateRepository, CrlSource, RevokedCertificate } from "./certificate-ports.js";
import { certificateState, toCertificateProto } from "./certificate-record.js";
import { checkCsr } from "./csr-policy.js";

/** The OU every device certificate carries; the broker and the API authorize on it. */
export const DEVICES_OU = "devices";
/** At most this many ACTIVE certificates per device: renewals must not pile up without bound. */
export const MAX_ACTIVE_CERTIFICATES = 10;
const MAX_VALIDITY_DAYS = 3650;

export interface CertificateServiceDeps {
  certificates: CertificateRepository;
  devices: DeviceRepository;
  issuer: CertificateIssuer;
  crl: CrlSource & { refresh(): Promise<void> };
  /** Revocations for every replica: their brokers cut sessions, their APIs refuse the serial. */
  revocations: ChangeFeed<RevokedCertificate>;
  clock: Clock;
  log: CoreLogger;
  /** Validity of a device certificate when the request does not say, days. */
  defaultValidityDays: number;
}

export type CertificateService = ReturnType<typeof createCertificateService>;

/**
 * Device certificates: issuing (from a CSR, or with a generated key returned once), renewal with
 * overlap, revocation with a reason, listing, and the CRL. Refusals are logged with their reason.
 */
export function createCertificateService(d: CertificateServiceDeps) {
  const { certificates, devices, issuer, clock, log } = d;

  function validity(days: number, field = "validity_days"): number {
    if (days === 0) return d.defaultValidityDays;
    if (!Number.isInteger(days) || days < 1 || days > MAX_VALIDITY_DAYS) throw InvalidArgumentError.field(field, `must be between 1 and ${MAX_VALIDITY_DAYS} days`);
    return days;
  }

  /** Logs why a request was refused (the caller gets the same reason, never a stack), then rethrows. */
  async function logged<T>(what: string, ctx: object, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof TetherError) log.warn({ ...ctx, code: err.code, reason: err.message }, `${what} refused`);
      throw err;
    }
  }

  async function getOwned(name: string): Promise<CertificateRecord> {
    const { deviceId, serialNumber } = parseCertificateName(name);
    const rec = await certificates.get(serialNumber);
    if (!rec || rec.kind !== "device" || rec.deviceId !== deviceId) throw new NotFoundError(certificateName(deviceId, serialNumber));
    return rec;
  }

  /** Issues for an existing device; shared by create, renew (API) and renew (MQTT). */
  async function issueFor(deviceId: string, opts: { csr: string; generateKey: boolean; validityDays: number; origin: CertificateOrigin; previousSerial?: string; requestId?: string }) {
    if (opts.csr === "" && !opts.generateKey) throw InvalidArgumentError.field("csr", "is required unless generate_key is set");
    if (opts.csr !== "" && opts.generateKey) throw InvalidArgumentError.field("generate_key", "must not be set together with csr");
    if (opts.csr !== "") await checkCsr(issuer, opts.csr, [deviceId]);
    if (!(await devices.get(deviceId))) throw new NotFoundError(deviceName(deviceId));
    const now = clock.now();
    if ((await certificates.countActive(deviceId, now)) >= MAX_ACTIVE_CERTIFICATES) {
      throw new FailedPreconditionError(`${deviceName(deviceId)} already has ${MAX_ACTIVE_CERTIFICATES} active certificates; revoke old ones first`);
    }
    const { certificate, privateKeyPem } = await issuer.issue({
      csrPem: opts.generateKey ? undefined : opts.csr,
      commonName: deviceId,
      organizationalUnit: DEVICES_OU,
      validityDays: opts.validityDays,
    });
    const stored = await certificates.insert({
      serialNumber: certificate.serialNumber,
      kind: "device",
      deviceId,
      subject: certificate.subject,
      certificatePem: certificate.certificatePem,
      origin: opts.generateKey && opts.origin === "csr" ? "generated" : opts.origin,
      previousSerial: opts.previousSerial,
      requestId: opts.requestId,
      notBefore: certificate.notBefore,
      notAfter: certificate.notAfter,
      createTime: now,
    });
    if (stored.serialNumber === certificate.serialNumber) log.info({ deviceId, serialNumber: stored.serialNumber, origin: stored.origin }, "device certificate issued");
    // A repeated MQTT request id returns the earlier certificate; the one just signed is dropped unseen.
    return { record: stored, privateKeyPem: stored.serialNumber === certificate.serialNumber ? privateKeyPem : undefined };
  }

  return {
    async createCertificate(req: CreateCertificateRequest): Promise<CreateCertificateResponse> {
      const deviceId = parseDeviceName(req.parent, "parent");
      return logged("certificate", { deviceId }, async () => {
        const { record, privateKeyPem } = await issueFor(deviceId, { csr: req.csr, generateKey: req.generateKey, validityDays: validity(req.validityDays), origin: "csr" });
        return { $typeName: "tether.v1.CreateCertificateResponse", certificate: toCertificateProto(record, clock.now()), privateKeyPem: privateKeyPem ?? "", caCertificatePem: issuer.caCertificatePem };
      });
    },

    async getCertificate(name: string): Promise<Certificate> {
      return toCertificateProto(await getOwned(name), clock.now());
    },

    async listCertificates(req: ListCertificatesRequest): Promise<ListCertificatesResponse> {
      const deviceId = parseDeviceName(req.parent, "parent");
      const limit = resolvePageSize(req.pageSize);
      const key = decodePageToken(req.pageToken, `certificates|${req.parent}`);
      const [t, s] = key?.split("|") ?? [];
      const after = t && s ? { createTime: new Date(t), serialNumber: s } : undefined;
      const rows = await certificates.listByDevice(deviceId, { after, limit: limit + 1 });
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      const now = clock.now();
      return {
        $typeName: "tether.v1.ListCertificatesResponse",
        certificates: page.map((r) => toCertificateProto(r, now)),
        nextPageToken: rows.length > limit && last ? encodePageToken(`${last.createTime.toISOString()}|${last.serialNumber}`, `certificates|${req.parent}`) : "",
      };
    },

    async renewCertificate(req: RenewCertificateRequest): Promise<RenewCertificateResponse> {
      return logged("certificate renewal", { name: req.name }, async () => {
        const old = await getOwned(req.name);
        const state = certificateState(old, clock.now());
        if (state !== Certificate_State.ACTIVE) {
          throw new FailedPreconditionError(`${req.name} is ${state === Certificate_State.REVOKED ? "revoked" : "expired"}: only an active certificate can be renewed; issue a new one with CreateCertificate`);
        }
        const { record, privateKeyPem } = await issueFor(old.deviceId!, { csr: req.csr, generateKey: req.generateKey, validityDays: validity(req.validityDays), origin: "renewal", previousSerial: old.serialNumber });
        return { $typeName: "tether.v1.RenewCertificateResponse", certificate: toCertificateProto(record, clock.now()), privateKeyPem: privateKeyPem ?? "", caCertificatePem: issuer.caCertificatePem };
      });
    },

    async revokeCertificate(req: RevokeCertificateRequest): Promise<Certificate> {
      const rec = await getOwned(req.name);
      if (RevocationReason[req.reason] === undefined) throw InvalidArgumentError.field("reason", `${req.reason} is not a revocation reason`);
      const res = await certificates.revoke(rec.serialNumber, req.reason, clock.now());
      if (!res) throw new NotFoundError(req.name);
      // Repeating a revoke is harmless: the certificate comes back as it is, with its first reason.
      if (res.changed) await announceRevocation(res.record);
      return toCertificateProto(res.record, clock.now());
    },

    async getCrl() {
      const { pem, count } = await d.crl.current();
      return { $typeName: "tether.v1.CertificateRevocationList" as const, crlPem: pem, revokedCount: count };
    },

    /**
     * A device's CSR over MQTT (the broker authenticated the device): a new certificate that
     * renews the newest active one. The same `requestId` returns the same certificate.
     */
    async renewForDevice(deviceId: string, requestId: string, csr: string): Promise<CertificateRecord> {
      return logged("mqtt certificate renewal", { deviceId }, async () => {
        if (csr === "") throw InvalidArgumentError.field("csr", "is required");
        if (requestId === "" || requestId.length > 128) throw InvalidArgumentError.field("request_id", "is required (at most 128 characters)");
        const previous = await certificates.newestActive(deviceId, clock.now());
        const { record } = await issueFor(deviceId, {
          csr,
          generateKey: false,
          validityDays: d.defaultValidityDays,
          origin: previous ? "renewal" : "csr",
          previousSerial: previous?.serialNumber,
          requestId,
        });
        return record;
      });
    },
  };

  /**
   * Tells every replica first (brokers cut sessions, APIs refuse the serial), so a failing CRL
   * write cannot keep a revoked session open; then writes the CRL.
   */
  async function announceRevocation(rec: CertificateRecord): Promise<void> {
    log.info({ deviceId: rec.deviceId, templateId: rec.templateId, serialNumber: rec.serialNumber, reason: rec.revocationReason }, "certificate revoked");
    d.revocations.publish({ serialNumber: rec.serialNumber, deviceId: rec.deviceId, revokeTime: rec.revokeTime!, reason: rec.revocationReason ?? 0 });
    await d.crl.refresh();
  }
}
