import { InvalidArgumentError, PermissionDeniedError } from "../errors.js";
import { truncate } from "../devices/device-name.js";
import type { CertificateIssuer, CsrSummary } from "../ports/certificates.js";
import { reservedIdProblem } from "../reserved-ids.js";

/** Largest CSR accepted, characters of PEM (a P-256 CSR is ~500, an RSA-4096 one ~1,700). */
const MAX_CSR_CHARS = 16_384;

/** Keys Tether signs: ECDSA on P-256/P-384 (the default), or RSA of at least 2048 bits. */
export function keyProblem(key: CsrSummary["key"]): string | undefined {
  if (key.type === "ec")
    return key.curve === "P-256" || key.curve === "P-384" ? undefined : `ECDSA curve ${key.curve ?? "unknown"} is not accepted (use P-256 or P-384)`;
  if (key.type === "rsa") return (key.bits ?? 0) >= 2048 ? undefined : `RSA key of ${key.bits ?? "?"} bits is too weak (at least 2048)`;
  return `key type ${key.type} is not accepted (use ECDSA P-256, P-384 or RSA ≥ 2048)`;
}

/**
 * Checks a CSR before Tether signs it for `deviceId`: it must parse, prove possession of its key
 * (self-signature), use a strong key, and claim no other identity. `allowedNames` are the CNs the
 * CSR may carry besides none at all (the device id; for provisioning also the serial number).
 * Tether sets the subject itself; this only refuses CSRs that ask for something else.
 */
export async function checkCsr(issuer: CertificateIssuer, csrPem: string, allowedNames: string[], field = "csr"): Promise<CsrSummary> {
  if (csrPem.length > MAX_CSR_CHARS) throw InvalidArgumentError.field(field, `is larger than ${MAX_CSR_CHARS} characters`);
  const csr = await issuer.inspectCsr(csrPem);
  if (!csr) throw InvalidArgumentError.field(field, "is not a PEM PKCS#10 certificate request (-----BEGIN CERTIFICATE REQUEST-----)");
  if (!csr.signatureValid) throw InvalidArgumentError.field(field, "signature does not verify: the CSR was altered or not signed with its own key");
  const weak = keyProblem(csr.key);
  if (weak) throw InvalidArgumentError.field(field, weak);
  const reserved = csr.commonName ? reservedIdProblem(csr.commonName) : undefined;
  if (reserved) throw InvalidArgumentError.field(field, `subject CN ${reserved}: no device certificate carries it`);
  if (csr.commonName !== undefined && csr.commonName !== "" && !allowedNames.includes(csr.commonName)) {
    throw new PermissionDeniedError(`the CSR's subject CN "${truncate(csr.commonName, 64)}" claims another identity than ${allowedNames[0]}`);
  }
  const foreignUnit = csr.organizationalUnits.find((ou) => ou !== "devices");
  if (foreignUnit !== undefined) throw new PermissionDeniedError(`the CSR asks for OU "${truncate(foreignUnit, 32)}"; devices get OU devices only`);
  return csr;
}
