/**
 * The CA as the certificate core sees it (the `CertificateIssuer` port): CSR inspection and
 * signing with @peculiar/x509, so `src/core` never touches X.509 itself.
 */
import "reflect-metadata"; // before @peculiar/x509, see certificate-authority.ts
import { createPublicKey, webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";
import type { CertificateIssuer, CsrSummary, SignedCertificate } from "../core/ports/certificates.js";
import { normalizeSerial } from "../core/certificates/certificate-name.js";
import type { CertificateAuthority } from "./certificate-authority.js";

const CURVES: Record<string, string> = { prime256v1: "P-256", secp384r1: "P-384", secp521r1: "P-521", secp256k1: "secp256k1" };

/** Reads a PEM CSR: subject, key type and strength, and whether its self-signature verifies. */
export async function inspectCsr(csrPem: string): Promise<CsrSummary | undefined> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    if (!/-----BEGIN (NEW )?CERTIFICATE REQUEST-----/.test(csrPem)) return undefined;
    csr = new x509.Pkcs10CertificateRequest(csrPem.trim());
  } catch {
    return undefined;
  }
  const cn = csr.subjectName.getField("CN");
  const ous = csr.subjectName.getField("OU");
  let key: CsrSummary["key"];
  try {
    const k = createPublicKey({ key: Buffer.from(csr.publicKey.rawData), format: "der", type: "spki" });
    const details = k.asymmetricKeyDetails ?? {};
    key = {
      type: k.asymmetricKeyType ?? "unknown",
      curve: details.namedCurve ? (CURVES[details.namedCurve] ?? details.namedCurve) : undefined,
      bits: details.modulusLength,
    };
  } catch {
    key = { type: "unknown" };
  }
  let signatureValid = false;
  try {
    signatureValid = await csr.verify();
  } catch {
    signatureValid = false; // an algorithm WebCrypto cannot verify is as good as a bad signature
  }
  return { commonName: cn[0], organizationalUnits: ous, signatureValid, key };
}

/** Implements the core's CertificateIssuer port on a CA. */
export function createCertificateIssuer(ca: CertificateAuthority): CertificateIssuer {
  return {
    caCertificatePem: ca.certPem,
    inspectCsr,
    samePublicKey(csrPem, certificatePem) {
      try {
        const a = Buffer.from(new x509.Pkcs10CertificateRequest(csrPem.trim()).publicKey.rawData);
        const b = Buffer.from(new x509.X509Certificate(certificatePem).publicKey.rawData);
        return a.equals(b);
      } catch {
        return false;
      }
    },
    async issue({ csrPem, commonName, organizationalUnit, validityDays }) {
      const opts = { commonName, organizationalUnit, usage: "client" as const, validityDays };
      if (csrPem !== undefined) {
        const csr = new x509.Pkcs10CertificateRequest(csrPem.trim());
        const signed = await ca.issueForPublicKey(csr.publicKey.rawData, opts);
        return {
          certificate: {
            serialNumber: signed.serialNumber,
            certificatePem: signed.certPem,
            subject: signed.subject,
            notBefore: signed.notBefore,
            notAfter: signed.notAfter,
          },
        };
      }
      const issued = await ca.issue(opts);
      const cert = new x509.X509Certificate(issued.certPem);
      return {
        certificate: {
          serialNumber: issued.serialNumber,
          certificatePem: issued.certPem,
          subject: cert.subject,
          notBefore: cert.notBefore,
          notAfter: cert.notAfter,
        },
        privateKeyPem: issued.keyPem,
      };
    },
  };
}

/**
 * Makes a PKCS#10 CSR with a fresh key, as a device would (tests, the CLI and the simulator use it).
 * ECDSA P-256 by default; `rsaBits` makes an RSA key instead (e.g. to show a weak key is refused).
 */
export async function createCsr(
  commonName: string | undefined,
  opts: { rsaBits?: number; organizationalUnit?: string } = {},
): Promise<{ csrPem: string; keyPem: string }> {
  const algorithm = opts.rsaBits
    ? { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256", publicExponent: new Uint8Array([1, 0, 1]), modulusLength: opts.rsaBits }
    : { name: "ECDSA", namedCurve: "P-256" };
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
  const name: x509.JsonName = [];
  if (commonName) name.push({ CN: [commonName] });
  if (opts.organizationalUnit) name.push({ OU: [opts.organizationalUnit] });
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name,
    keys: keys as never,
    signingAlgorithm: opts.rsaBits ? { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } : ({ name: "ECDSA", hash: "SHA-256" } as webcrypto.EcdsaParams),
  });
  const pkcs8 = await webcrypto.subtle.exportKey("pkcs8", keys.privateKey);
  return { csrPem: csr.toString("pem") + "\n", keyPem: x509.PemConverter.encode(pkcs8, "PRIVATE KEY") + "\n" };
}

/**
 * Reads a certificate Tether's CA issued outside the API (the dev PKI's `admin.crt`) into the
 * shape the certificate table stores, so it can be recorded, listed and revoked.
 */
export function describeCertificate(certPem: string): SignedCertificate {
  const cert = new x509.X509Certificate(certPem.trim());
  return {
    serialNumber: normalizeSerial(cert.serialNumber),
    certificatePem: certPem,
    subject: cert.subject,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
  };
}
