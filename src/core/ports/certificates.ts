/**
 * The ports of the certificate core. The X.509 work (parsing CSRs, signing, CRLs) happens behind
 * {@link CertificateIssuer} in `src/pki/`, storage behind {@link CertificateRepository} and
 * {@link ProvisioningRepository} in `src/store/`, so this folder imports no crypto or I/O library.
 */
import type { Device } from "../../../gen/tether/v1/device_pb.js";

/** What Tether needs to know about a CSR before it signs anything for it. */
export interface CsrSummary {
  /** The subject CN, if the CSR has one. */
  commonName?: string;
  /** Subject OUs (a device may only ask for `devices`, or nothing). */
  organizationalUnits: string[];
  /** Whether the CSR's self-signature verifies with its own public key (proof of possession). */
  signatureValid: boolean;
  /** The public key: `ec` with its curve (`P-256`), `rsa` with its size, or another type. */
  key: { type: string; curve?: string; bits?: number };
}

/** A signed certificate as the issuer returns it. */
export interface SignedCertificate {
  serialNumber: string;
  certificatePem: string;
  subject: string;
  notBefore: Date;
  notAfter: Date;
}

/** The CA, seen from the core. */
export interface CertificateIssuer {
  readonly caCertificatePem: string;
  /** Reads a PEM CSR; undefined if it is not one. */
  inspectCsr(csrPem: string): Promise<CsrSummary | undefined>;
  /** Whether a CSR and a certificate (both PEM) carry the same public key. */
  samePublicKey(csrPem: string, certificatePem: string): boolean;
  /**
   * Signs a client certificate with exactly this subject (nothing else from the CSR is copied).
   * Without `csrPem` a P-256 key pair is generated and its private key returned.
   */
  issue(req: {
    csrPem?: string;
    commonName: string;
    organizationalUnit: string;
    validityDays: number;
  }): Promise<{ certificate: SignedCertificate; privateKeyPem?: string }>;
}

/** The current CRL (PEM) and how many certificates it lists. */
export interface CrlSource {
  current(): Promise<{ pem: string; count: number }>;
}

export type CertificateOrigin = "csr" | "generated" | "renewal" | "provisioning" | "claim";

/** A stored certificate: device, claim and user (the bootstrap `admin`) certificates share one table. */
export interface CertificateRecord {
  serialNumber: string;
  kind: "device" | "claim" | "user";
  /** Set for device certificates. */
  deviceId?: string;
  /**
   * The uid of the device incarnation it was issued for: a device deleted and re-created under the
   * same id has a new uid and does not inherit this certificate. Unset only for certificates of
   * deleted predecessors found by the migration that introduced it (those are revoked).
   */
  deviceUid?: string;
  /** Set for user certificates: the user (the certificate CN). */
  userName?: string;
  /** The provisioning template: of a claim certificate, or the one that provisioned a device. */
  templateId?: string;
  subject: string;
  certificatePem: string;
  origin: CertificateOrigin;
  previousSerial?: string;
  /** An MQTT renewal's request id: a redelivered request gets the same certificate. */
  requestId?: string;
  notBefore: Date;
  notAfter: Date;
  createTime: Date;
  revokeTime?: Date;
  /** RFC 5280 reason code. */
  revocationReason?: number;
}

/** A revocation, as announced to every replica (broker sessions, API, CRL). */
export interface RevokedCertificate {
  serialNumber: string;
  deviceId?: string;
  revokeTime: Date;
  reason: number;
}

/** Where a list of certificates starts: after this (create_time, serial) key. */
export interface CertificatePage {
  after?: { createTime: Date; serialNumber: string };
  limit: number;
}

export interface CertificateRepository {
  /**
   * Stores a new certificate. With a `requestId` already used by the device, stores nothing and
   * returns the earlier one. A device certificate is stored only while its device incarnation
   * (`deviceId` and `deviceUid`) exists, in the same transaction: NotFoundError otherwise, so a
   * certificate signed while its device was being deleted never outlives it unrevoked.
   */
  insert(rec: CertificateRecord): Promise<CertificateRecord>;
  /** Stores a certificate unless its serial is already known; returns the stored row. */
  record(rec: CertificateRecord): Promise<CertificateRecord>;
  get(serialNumber: string): Promise<CertificateRecord | undefined>;
  /** The certificates of one device incarnation ordered by (create_time, serial), after the given key. */
  listByDevice(deviceUid: string, page: CertificatePage): Promise<CertificateRecord[]>;
  /** A user's client certificates, in the same order. */
  listByUser(userName: string, page: CertificatePage): Promise<CertificateRecord[]>;
  /** Certificates of a device incarnation that are neither revoked nor expired at `now`. */
  countActive(deviceUid: string, now: Date): Promise<number>;
  /** The newest certificate of a device incarnation that is neither revoked nor expired. */
  newestActive(deviceUid: string, now: Date): Promise<CertificateRecord | undefined>;
  /** Marks revoked unless it already is; returns the row as it now is (undefined if unknown) and whether this call revoked it. */
  revoke(serialNumber: string, reason: number, now: Date): Promise<{ record: CertificateRecord; changed: boolean } | undefined>;
  /** Revokes every active claim certificate of a template; returns them. */
  revokeClaims(templateId: string, reason: number, now: Date): Promise<CertificateRecord[]>;
  /** Every revoked certificate not yet expired at `now` (what a CRL must list). */
  listRevoked(now: Date): Promise<CertificateRecord[]>;
  /**
   * Devices whose newest active certificate expires before `before` and that were not warned
   * since `warnedSince`; at most `limit`.
   */
  expiringSoon(before: Date, warnedSince: Date, now: Date, limit: number): Promise<CertificateRecord[]>;
  markWarned(serialNumbers: string[], now: Date): Promise<void>;
}

/** A zero-touch provisioning template. */
export interface ProvisioningTemplateRecord {
  id: string;
  deviceKind: string;
  deviceIdPrefix: string;
  labels: Record<string, string>;
  allowedSerialNumbers: string[];
  serialNumberPattern: string;
  certificateValidityDays: number;
  createTime: Date;
  provisionedCount: number;
}

export interface ProvisioningRecord {
  templateId: string;
  serialNumber: string;
  deviceId: string;
  certificateSerial: string;
  createTime: Date;
}

export interface ProvisioningRepository {
  /** Throws AlreadyExistsError if the id is taken. */
  insertTemplate(t: ProvisioningTemplateRecord): Promise<void>;
  getTemplate(id: string): Promise<ProvisioningTemplateRecord | undefined>;
  listTemplates(afterId: string | undefined, limit: number): Promise<ProvisioningTemplateRecord[]>;
  addSerialNumbers(id: string, serials: string[]): Promise<ProvisioningTemplateRecord | undefined>;
  deleteTemplate(id: string): Promise<boolean>;
  getRecord(templateId: string, serialNumber: string): Promise<ProvisioningRecord | undefined>;
  /**
   * In one transaction: claims (template, serial) — once only —, registers the device and stores
   * its certificate. `serial_taken` and `device_exists` leave nothing behind.
   */
  provision(p: { record: ProvisioningRecord; device: Device; certificate: CertificateRecord }): Promise<"ok" | "serial_taken" | "device_exists">;
  listRecords(templateId: string, afterSerial: string | undefined, limit: number): Promise<ProvisioningRecord[]>;
  /**
   * The template whose namespace `deviceId` falls in: `exact` when a template has this very id
   * (device and template ids are disjoint), else one whose device id prefix it starts with (an id
   * that template hands out). Undefined if none.
   */
  templateFor(deviceId: string): Promise<{ templateId: string; prefix: string; exact: boolean } | undefined>;
}
