/**
 * A small X.509 certificate authority for mutual TLS between Tether, its clients and devices.
 *
 * Keys are ECDSA P-256 (small, fast, accepted by every TLS stack devices are likely to run) generated
 * with Node's WebCrypto; certificates are built with @peculiar/x509. All PEM output is in the formats
 * Node's `tls` module and OpenSSL read directly (certificates, PKCS#8 private keys).
 */
// @peculiar/x509 resolves to its CommonJS build, which needs a Reflect metadata polyfill (via tsyringe)
// loaded before it; ESM evaluates imports in order, so this line must stay above the x509 import.
import "reflect-metadata";
import { createPrivateKey, createPublicKey, randomBytes, webcrypto } from "node:crypto";
import { isIP } from "node:net";
import * as x509 from "@peculiar/x509";

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const EC_KEY_ALGORITHM = { name: "ECDSA", namedCurve: "P-256" } as const;
const DAY_MS = 24 * 60 * 60 * 1000;
/** Backdate `notBefore` so a peer whose clock is a little behind still accepts a fresh certificate. */
const CLOCK_SKEW_MS = 5 * 60 * 1000;

/** What to put into a certificate issued by {@link CertificateAuthority.issue}. */
export interface IssueOptions {
  commonName: string;
  /** `server` adds extendedKeyUsage serverAuth and a subjectAltName; `client` adds clientAuth. */
  usage: "server" | "client";
  /** DNS subjectAltNames (server certificates; TLS clients check the host name against these, not the CN). */
  dnsNames?: string[];
  /** IP subjectAltNames (server certificates), IPv4 or IPv6. */
  ipAddresses?: string[];
  /** Defaults to 825 days for servers (the longest clients such as Apple's accept) and 365 for clients. */
  validityDays?: number;
  /** Role marker read by Tether's authorization: `devices` for devices, `users` for people. */
  organizationalUnit?: string;
}

/** A freshly issued certificate with its private key; the key is never stored by the CA. */
export interface IssuedCertificate {
  certPem: string;
  /** PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`). */
  keyPem: string;
  /** Hexadecimal serial number, the handle for revocation and auditing. */
  serialNumber: string;
}

/** A certificate signed for a public key the CA never saw the private half of. */
export interface SignedCertificate {
  certPem: string;
  serialNumber: string;
  /** RFC 4514-ish subject as @peculiar/x509 prints it, e.g. `CN=dev-1, OU=devices`. */
  subject: string;
  notBefore: Date;
  notAfter: Date;
}

/** One CRL entry: a revoked serial number (hexadecimal), when, and the RFC 5280 reason code. */
export interface CrlEntry {
  serialNumber: string;
  revocationDate: Date;
  reason: number;
}

/** A CA that can sign server and client certificates. */
export interface CertificateAuthority {
  certPem: string;
  keyPem: string;
  /** The CA's own expiry: nothing it signs may outlive it. */
  notAfter: Date;
  issue(opts: IssueOptions): Promise<IssuedCertificate>;
  /** Signs a certificate for `publicKey` (DER SubjectPublicKeyInfo, e.g. from a CSR). */
  issueForPublicKey(publicKey: ArrayBuffer, opts: IssueOptions): Promise<SignedCertificate>;
  /** A CRL signed by this CA listing `entries`, valid from now until `nextUpdate`. */
  createCrl(entries: CrlEntry[], nextUpdate: Date): Promise<string>;
}

/** Creates a new self-signed CA (ECDSA P-256, valid for 10 years). */
export async function createCertificateAuthority(commonName: string): Promise<CertificateAuthority> {
  const keys = (await webcrypto.subtle.generateKey(EC_KEY_ALGORITHM, true, ["sign", "verify"])) as CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerialNumber(),
    name: [{ CN: [commonName] }],
    notBefore: new Date(now - CLOCK_SKEW_MS),
    notAfter: new Date(now + 3650 * DAY_MS),
    keys,
    signingAlgorithm: { name: "ECDSA", hash: "SHA-256" } as webcrypto.EcdsaParams,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return authority(cert, keys.privateKey, await exportPkcs8Pem(keys.privateKey));
}

/**
 * Loads an existing CA from PEM. The key may be PKCS#8 or the SEC1 / PKCS#1 formats `openssl` writes;
 * ECDSA (P-256, P-384) and RSA keys work, and the key must belong to the certificate. The result's
 * `keyPem` is the key re-encoded as PKCS#8.
 */
export async function loadCertificateAuthority(certPem: string, keyPem: string): Promise<CertificateAuthority> {
  const cert = new x509.X509Certificate(certPem);
  const keyObject = createPrivateKey(keyPem);
  const spki = createPublicKey(keyObject).export({ type: "spki", format: "der" });
  if (!spki.equals(Buffer.from(cert.publicKey.rawData))) {
    throw new Error("CA private key does not match the CA certificate");
  }
  const basic = cert.getExtension(x509.BasicConstraintsExtension);
  if (!basic?.ca) throw new Error("certificate is not a CA certificate (basicConstraints CA:false)");

  const pkcs8 = keyObject.export({ type: "pkcs8", format: "der" });
  let algorithm: webcrypto.EcKeyImportParams | webcrypto.RsaHashedImportParams;
  if (keyObject.asymmetricKeyType === "ec") {
    const curve = keyObject.asymmetricKeyDetails?.namedCurve;
    const namedCurve = curve === "prime256v1" ? "P-256" : curve === "secp384r1" ? "P-384" : undefined;
    if (!namedCurve) throw new Error(`unsupported CA key curve ${curve ?? "unknown"}`);
    algorithm = { name: "ECDSA", namedCurve };
  } else if (keyObject.asymmetricKeyType === "rsa") {
    algorithm = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
  } else {
    throw new Error(`unsupported CA key type ${keyObject.asymmetricKeyType ?? "unknown"}`);
  }
  const signingKey = (await webcrypto.subtle.importKey("pkcs8", pkcs8, algorithm, false, ["sign"])) as CryptoKey;
  const normalizedKeyPem = keyObject.export({ type: "pkcs8", format: "pem" }).toString();
  return authority(cert, signingKey, normalizedKeyPem);
}

function authority(caCert: x509.X509Certificate, caKey: CryptoKey, keyPem: string): CertificateAuthority {
  const certPem = caCert.toString("pem") + "\n";
  const signingAlgorithm =
    caKey.algorithm.name === "ECDSA"
      ? ({ name: "ECDSA", hash: (caKey.algorithm as webcrypto.EcKeyAlgorithm).namedCurve === "P-384" ? "SHA-384" : "SHA-256" } as webcrypto.EcdsaParams)
      : caKey.algorithm;
  // Chain builders match the AKI against the CA's own SKI, so reuse it when the CA has one.
  const caKeyId = caCert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
  async function sign(publicKey: CryptoKey | x509.PublicKey, opts: IssueOptions): Promise<{ cert: x509.X509Certificate; serialNumber: string }> {
    if (!opts.commonName) throw new Error("commonName is required");
    const now = Date.now();
    const validityDays = opts.validityDays ?? (opts.usage === "server" ? 825 : 365);
    const subject: x509.JsonName = [{ CN: [opts.commonName] }];
    if (opts.organizationalUnit) subject.push({ OU: [opts.organizationalUnit] });
    const extensions: x509.Extension[] = [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([opts.usage === "server" ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth], false),
      await x509.SubjectKeyIdentifierExtension.create(publicKey),
      caKeyId ? new x509.AuthorityKeyIdentifierExtension(caKeyId) : await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey),
    ];
    const names: x509.JsonGeneralName[] = [
      ...(opts.dnsNames ?? []).map((value) => ({ type: "dns" as const, value })),
      ...(opts.ipAddresses ?? []).map((value) => {
        if (!isIP(value)) throw new Error(`not an IP address: ${value}`);
        return { type: "ip" as const, value };
      }),
    ];
    if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names, false));
    const serialNumber = randomSerialNumber();
    // A certificate never outlives the CA that signed it (chain validation would fail anyway).
    const notAfter = new Date(Math.min(now + validityDays * DAY_MS, caCert.notAfter.getTime()));
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber,
      subject,
      issuer: caCert.subjectName,
      notBefore: new Date(now - CLOCK_SKEW_MS),
      notAfter,
      publicKey,
      signingKey: caKey,
      signingAlgorithm,
      extensions,
    });
    return { cert, serialNumber };
  }

  return {
    certPem,
    keyPem,
    notAfter: caCert.notAfter,
    async issue(opts: IssueOptions): Promise<IssuedCertificate> {
      const keys = (await webcrypto.subtle.generateKey(EC_KEY_ALGORITHM, true, ["sign", "verify"])) as CryptoKeyPair;
      const { cert, serialNumber } = await sign(keys.publicKey, opts);
      return { certPem: cert.toString("pem") + "\n", keyPem: await exportPkcs8Pem(keys.privateKey), serialNumber };
    },
    async issueForPublicKey(publicKey: ArrayBuffer, opts: IssueOptions): Promise<SignedCertificate> {
      const { cert, serialNumber } = await sign(new x509.PublicKey(publicKey), opts);
      return { certPem: cert.toString("pem") + "\n", serialNumber, subject: cert.subject, notBefore: cert.notBefore, notAfter: cert.notAfter };
    },
    async createCrl(entries: CrlEntry[], nextUpdate: Date): Promise<string> {
      const crl = await x509.X509CrlGenerator.create({
        issuer: caCert.subjectName,
        thisUpdate: new Date(Date.now() - CLOCK_SKEW_MS),
        nextUpdate,
        signingKey: caKey,
        signingAlgorithm,
        extensions: [caKeyId ? new x509.AuthorityKeyIdentifierExtension(caKeyId) : await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey)],
        entries: entries.map((e) => ({ serialNumber: e.serialNumber, revocationDate: e.revocationDate, reason: e.reason as x509.X509CrlReason })),
      });
      // @peculiar/x509 labels it "CRL"; OpenSSL (and so Mosquitto's crlfile, nginx, curl) only reads "X509 CRL".
      return x509.PemConverter.encode(crl.rawData, "X509 CRL") + "\n";
    },
  };
}

/** 16 random bytes with the high bit cleared (DER INTEGERs are signed; serials must be positive). */
function randomSerialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f || 0x01; // non-zero first byte keeps the hex form canonical
  return bytes.toString("hex");
}

async function exportPkcs8Pem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey("pkcs8", key);
  return x509.PemConverter.encode(der, "PRIVATE KEY") + "\n";
}
