import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type Certificate, Certificate_Origin, Certificate_State, CertificateSchema, RevocationReason } from "../../../gen/tether/v1/certificate_pb.js";
import { certificateName, templateName, userCertificateName } from "./certificate-name.js";
import type { CertificateOrigin, CertificateRecord } from "../ports/certificates.js";

const ORIGINS: Record<CertificateOrigin, Certificate_Origin> = {
  csr: Certificate_Origin.CSR,
  generated: Certificate_Origin.GENERATED,
  renewal: Certificate_Origin.RENEWAL,
  provisioning: Certificate_Origin.PROVISIONING,
  claim: Certificate_Origin.UNSPECIFIED,
};

/** ACTIVE, REVOKED or EXPIRED at `now`. */
export function certificateState(rec: CertificateRecord, now: Date): Certificate_State {
  if (rec.revokeTime) return Certificate_State.REVOKED;
  return rec.notAfter.getTime() <= now.getTime() ? Certificate_State.EXPIRED : Certificate_State.ACTIVE;
}

/** The API view of a stored certificate. There is no private key to leave out: none is stored. */
export function toCertificateProto(rec: CertificateRecord, now: Date): Certificate {
  const deviceId = rec.deviceId ?? "-";
  const nameOf = (serial: string) => (rec.kind === "user" ? userCertificateName(rec.userName!, serial) : certificateName(deviceId, serial));
  return create(CertificateSchema, {
    name: nameOf(rec.serialNumber),
    serialNumber: rec.serialNumber,
    subject: rec.subject,
    certificatePem: rec.certificatePem,
    startTime: timestampFromDate(rec.notBefore),
    expireTime: timestampFromDate(rec.notAfter),
    state: certificateState(rec, now),
    origin: ORIGINS[rec.origin],
    previousCertificate: rec.previousSerial ? nameOf(rec.previousSerial) : "",
    createTime: timestampFromDate(rec.createTime),
    revokeTime: rec.revokeTime ? timestampFromDate(rec.revokeTime) : undefined,
    revocationReason: (rec.revocationReason ?? RevocationReason.UNSPECIFIED) as RevocationReason,
    provisioningTemplate: rec.templateId ? templateName(rec.templateId) : "",
    deviceUid: rec.deviceUid ?? "",
  });
}
