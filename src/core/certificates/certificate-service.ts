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
import type { DeviceRepository } from "../ports/device-repository.js";
import { deviceName, parseDeviceName } from "../devices/device-name.js";
import { FailedPreconditionError, InvalidArgumentError, NotFoundError, TetherError } from "../errors.js";
import type { CoreLogger } from "../log.js";
import { decodePageToken, encodePageToken, resolvePageSize } from "../page-token.js";
import type { ChangeFeed } from "../ports/index.js";
import { reservedIdProblem } from "../reserved-ids.js";
import { certificateName, normalizeSerial, parseAnyCertificateName, parseCertificateParent, userCertificateName } from "./certificate-name.js";
import type {
  CertificateIssuer,
  CertificateOrigin,
  CertificateRecord,
  CertificateRepository,
  CrlSource,
  RevokedCertificate,
  SignedCertificate,
} from "../ports/certificates.js";
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
    if (!Number.isInteger(days) || days < 1 || days > MAX_VALIDITY_DAYS)
      throw InvalidArgumentError.field(field, `must be between 1 and ${MAX_VALIDITY_DAYS} days`);
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

  /**
   * The certificate a name denotes, or NOT_FOUND. A device certificate is found only under the
   * device incarnation it was issued for: a re-created device does not see its predecessor's.
   */
  async function getOwned(name: string): Promise<CertificateRecord> {
    const { owner, serialNumber } = parseAnyCertificateName(name);
    const rec = await certificates.get(serialNumber);
    if (owner.kind === "user") {
      if (rec?.kind !== "user" || rec.userName !== owner.userName) throw new NotFoundError(userCertificateName(owner.userName, serialNumber));
      return rec;
    }
    const missing = new NotFoundError(certificateName(owner.deviceId, serialNumber));
    if (rec?.kind !== "device" || rec.deviceId !== owner.deviceId) throw missing;
    const current = await devices.get(owner.deviceId);
    if (current && current.device.uid !== rec.deviceUid) throw missing;
    return rec;
  }

  /** Issues for an existing device; shared by create, renew (API) and renew (MQTT). */
  async function issueFor(
    deviceId: string,
    opts: { csr: string; generateKey: boolean; validityDays: number; origin: CertificateOrigin; previousSerial?: string; requestId?: string },
  ) {
    if (opts.csr === "" && !opts.generateKey) throw InvalidArgumentError.field("csr", "is required unless generate_key is set");
    if (opts.csr !== "" && opts.generateKey) throw InvalidArgumentError.field("generate_key", "must not be set together with csr");
    // A device registered before the reserved names existed still gets no certificate under one.
    const reserved = reservedIdProblem(deviceId);
    if (reserved) throw InvalidArgumentError.field("parent", `${reserved}: no device certificate is issued for it`);
    if (opts.csr !== "") await checkCsr(issuer, opts.csr, [deviceId]);
    const device = await devices.get(deviceId);
    if (!device) throw new NotFoundError(deviceName(deviceId));
    const deviceUid = device.device.uid;
    const now = clock.now();
    if ((await certificates.countActive(deviceUid, now)) >= MAX_ACTIVE_CERTIFICATES) {
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
      deviceUid,
      subject: certificate.subject,
      certificatePem: certificate.certificatePem,
      origin: opts.generateKey && opts.origin === "csr" ? "generated" : opts.origin,
      previousSerial: opts.previousSerial,
      requestId: opts.requestId,
      notBefore: certificate.notBefore,
      notAfter: certificate.notAfter,
      createTime: now,
    });
    if (stored.serialNumber === certificate.serialNumber)
      log.info({ deviceId, serialNumber: stored.serialNumber, origin: stored.origin }, "device certificate issued");
    // A repeated MQTT request id returns the earlier certificate; the one just signed is dropped unseen.
    return { record: stored, privateKeyPem: stored.serialNumber === certificate.serialNumber ? privateKeyPem : undefined };
  }

  return {
    async createCertificate(req: CreateCertificateRequest): Promise<CreateCertificateResponse> {
      const deviceId = parseDeviceName(req.parent, "parent");
      return logged("certificate", { deviceId }, async () => {
        const { record, privateKeyPem } = await issueFor(deviceId, {
          csr: req.csr,
          generateKey: req.generateKey,
          validityDays: validity(req.validityDays),
          origin: "csr",
        });
        return {
          $typeName: "tether.v1.CreateCertificateResponse",
          certificate: toCertificateProto(record, clock.now()),
          privateKeyPem: privateKeyPem ?? "",
          caCertificatePem: issuer.caCertificatePem,
        };
      });
    },

    async getCertificate(name: string): Promise<Certificate> {
      return toCertificateProto(await getOwned(name), clock.now());
    },

    async listCertificates(req: ListCertificatesRequest): Promise<ListCertificatesResponse> {
      const owner = parseCertificateParent(req.parent, "parent");
      const limit = resolvePageSize(req.pageSize);
      const key = decodePageToken(req.pageToken, `certificates|${req.parent}`);
      const [t, s] = key?.split("|") ?? [];
      const after = t && s ? { createTime: new Date(t), serialNumber: s } : undefined;
      let rows: CertificateRecord[];
      if (owner.kind === "user") {
        rows = await certificates.listByUser(owner.userName, { after, limit: limit + 1 });
      } else {
        // This incarnation's certificates only: a predecessor's (revoked at its deletion) are not its own.
        const device = await devices.get(owner.deviceId);
        if (!device) throw new NotFoundError(deviceName(owner.deviceId));
        rows = await certificates.listByDevice(device.device.uid, { after, limit: limit + 1 });
      }
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      const now = clock.now();
      return {
        $typeName: "tether.v1.ListCertificatesResponse",
        certificates: page.map((r) => toCertificateProto(r, now)),
        nextPageToken:
          rows.length > limit && last ? encodePageToken(`${last.createTime.toISOString()}|${last.serialNumber}`, `certificates|${req.parent}`) : "",
      };
    },

    async renewCertificate(req: RenewCertificateRequest): Promise<RenewCertificateResponse> {
      return logged("certificate renewal", { name: req.name }, async () => {
        const old = await getOwned(req.name);
        if (old.kind !== "device")
          throw new FailedPreconditionError(`${req.name} is a user certificate: the dev PKI reissues it (delete it from the certs directory and restart)`);
        const state = certificateState(old, clock.now());
        if (state !== Certificate_State.ACTIVE) {
          throw new FailedPreconditionError(
            `${req.name} is ${state === Certificate_State.REVOKED ? "revoked" : "expired"}: only an active certificate can be renewed; issue a new one with CreateCertificate`,
          );
        }
        const { record, privateKeyPem } = await issueFor(old.deviceId!, {
          csr: req.csr,
          generateKey: req.generateKey,
          validityDays: validity(req.validityDays),
          origin: "renewal",
          previousSerial: old.serialNumber,
        });
        return {
          $typeName: "tether.v1.RenewCertificateResponse",
          certificate: toCertificateProto(record, clock.now()),
          privateKeyPem: privateKeyPem ?? "",
          caCertificatePem: issuer.caCertificatePem,
        };
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

    /**
     * Announces revocations already committed elsewhere (DeleteDevice revokes a device's
     * certificates in its own transaction): every replica cuts their sessions, then the CRL is rewritten.
     */
    async announceRevoked(deviceId: string, revoked: Array<{ serialNumber: string; revokeTime: Date; reason: number }>): Promise<void> {
      if (revoked.length === 0) return;
      for (const r of revoked) d.revocations.publish({ serialNumber: r.serialNumber, deviceId, revokeTime: r.revokeTime, reason: r.reason });
      log.info({ deviceId, certificates: revoked.length, reason: revoked[0]!.reason }, "certificates of a deleted device revoked");
      // The deletion has committed: a failed CRL write must not report it as failed (the daily
      // rewrite, or the next revocation, catches up; the in-memory sets are already current).
      await d.crl.refresh().catch((err: unknown) => log.error({ err, deviceId }, "CRL rewrite after a device deletion failed"));
    },

    /**
     * Records a user's client certificate that the dev PKI issued outside the API (the bootstrap
     * `admin` certificate), so it is listed and revocable like any other. Idempotent.
     */
    async recordUserCertificate(userName: string, cert: SignedCertificate): Promise<CertificateRecord> {
      return certificates.record({
        serialNumber: normalizeSerial(cert.serialNumber),
        kind: "user",
        userName,
        subject: cert.subject,
        certificatePem: cert.certificatePem,
        origin: "generated",
        notBefore: cert.notBefore,
        notAfter: cert.notAfter,
        createTime: clock.now(),
      });
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
        const current = await devices.get(deviceId);
        const previous = current ? await certificates.newestActive(current.device.uid, clock.now()) : undefined;
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
