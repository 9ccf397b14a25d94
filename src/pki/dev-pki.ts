/**
 * The development PKI: a CA, a `localhost` server certificate and an `admin` client certificate kept in
 * one directory (by default `certs/`), created on first start and reused afterwards, so that
 * `npm start` gives working mutual TLS with no manual OpenSSL steps.
 */
import { X509Certificate } from "node:crypto";
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import { writePrivateFile, writePublicFile } from "../ops/file-modes.js";
import { isValidDeviceId } from "../protocol/topics.js";
import { reservedIdProblem } from "../core/reserved-ids.js";
import {
  createCertificateAuthority,
  loadCertificateAuthority,
  type CertificateAuthority,
  type IssueOptions,
  type IssuedCertificate,
} from "./certificate-authority.js";

/** Common name of the CA that {@link ensureDevPki} creates. */
export const DEV_CA_COMMON_NAME = "Tether Development CA";
/** Organizational unit that marks a device certificate; the MQTT broker authorizes on it. */
export const DEVICES_OU = "devices";
/** Organizational unit that marks a person's (CLI, admin) client certificate. */
export const USERS_OU = "users";
/** Organizational unit for Tether's own internal clients (e.g. the MQTT bridge). */
export const SERVICES_OU = "services";

/** The subset of a pino logger the PKI uses. */
export type PkiLogger = Pick<Logger, "info" | "warn">;

/** A certificate and its private key, both PEM. */
export interface CertificateAndKey {
  certPem: string;
  keyPem: string;
}

/** The development PKI on disk and in memory. */
export interface DevPki {
  dir: string;
  ca: CertificateAuthority;
  caPem: string;
  server: CertificateAndKey;
  admin: CertificateAndKey;
  paths: {
    ca: string;
    server: { cert: string; key: string };
    admin: { cert: string; key: string };
  };
}

/**
 * Loads the development PKI from `dir`, creating whatever is missing. Existing files are reused, so the
 * CA (and every certificate it issued, devices included) survives restarts. A server or admin
 * certificate that is missing, expired or not signed by the current CA is issued again.
 */
export async function ensureDevPki(dir: string, log?: PkiLogger): Promise<DevPki> {
  // Readable by others (brokers read ca.crt and crl.pem in place), writable by Tether only; keys are 0600.
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const caCertPath = join(dir, "ca.crt");
  const caKeyPath = join(dir, "ca.key");
  const [caCertPem, caKeyPem] = await Promise.all([readIfExists(caCertPath), readIfExists(caKeyPath)]);

  let ca: CertificateAuthority;
  if (caCertPem !== undefined && caKeyPem !== undefined) {
    ca = await loadCertificateAuthority(caCertPem, caKeyPem);
  } else if (caCertPem !== undefined || caKeyPem !== undefined) {
    // Never replace half a CA: the remaining file may be the only copy of something that matters.
    throw new Error(`incomplete CA in ${dir}: need both ca.crt and ca.key, or neither`);
  } else {
    ca = await createCertificateAuthority(DEV_CA_COMMON_NAME);
    await writeKeyPair(caCertPath, ca.certPem, caKeyPath, ca.keyPem);
    log?.info({ path: caCertPath }, "created development CA");
  }

  const server = await ensureLeaf(ca, dir, "server", log, {
    commonName: "localhost",
    usage: "server",
    dnsNames: ["localhost"],
    ipAddresses: ["127.0.0.1", "::1"],
  });
  const admin = await ensureLeaf(ca, dir, "admin", log, {
    commonName: "admin",
    usage: "client",
    organizationalUnit: USERS_OU,
  });

  return {
    dir,
    ca,
    caPem: ca.certPem,
    server: { certPem: server.certPem, keyPem: server.keyPem },
    admin: { certPem: admin.certPem, keyPem: admin.keyPem },
    paths: {
      ca: caCertPath,
      server: { cert: server.certPath, key: server.keyPath },
      admin: { cert: admin.certPath, key: admin.keyPath },
    },
  };
}

/**
 * Issues a device's client certificate: CN = device id (which must also be its MQTT client id) and
 * OU `devices`, which is what the broker checks before letting it use its own topics.
 */
export async function issueDeviceCertificate(ca: CertificateAuthority, deviceId: string, opts: { validityDays?: number } = {}): Promise<IssuedCertificate> {
  if (!isValidDeviceId(deviceId)) throw new Error(`invalid device id: ${JSON.stringify(deviceId)}`);
  const reserved = reservedIdProblem(deviceId);
  if (reserved) throw new Error(`not a device id: ${reserved}`);
  return ca.issue({ commonName: deviceId, usage: "client", organizationalUnit: DEVICES_OU, ...opts });
}

/**
 * Issues a client certificate for one of Tether's own processes, e.g. the MQTT bridge (CN `tether`),
 * which the embedded broker lets use every topic. Nothing is written to disk: issue one per start.
 */
export async function issueServiceCertificate(ca: CertificateAuthority, commonName = "tether"): Promise<IssuedCertificate> {
  return ca.issue({ commonName, usage: "client", organizationalUnit: SERVICES_OU });
}

async function ensureLeaf(
  ca: CertificateAuthority,
  dir: string,
  name: string,
  log: PkiLogger | undefined,
  opts: IssueOptions,
): Promise<CertificateAndKey & { certPath: string; keyPath: string }> {
  const certPath = join(dir, `${name}.crt`);
  const keyPath = join(dir, `${name}.key`);
  const [certPem, keyPem] = await Promise.all([readIfExists(certPath), readIfExists(keyPath)]);
  if (certPem !== undefined && keyPem !== undefined) {
    const problem = leafProblem(ca, certPem);
    if (!problem) return { certPem, keyPem, certPath, keyPath };
    log?.warn({ path: certPath, problem }, "reissuing development certificate");
  }
  const issued = await ca.issue(opts);
  await writeKeyPair(certPath, issued.certPem, keyPath, issued.keyPem);
  log?.info({ path: certPath, serialNumber: issued.serialNumber }, "issued development certificate");
  return { certPem: issued.certPem, keyPem: issued.keyPem, certPath, keyPath };
}

/** Why an existing certificate cannot be reused with this CA, or undefined if it can. */
function leafProblem(ca: CertificateAuthority, certPem: string): string | undefined {
  try {
    const cert = new X509Certificate(certPem);
    const caCert = new X509Certificate(ca.certPem);
    if (!cert.checkIssued(caCert) || !cert.verify(caCert.publicKey)) return "not issued by the current CA";
    if (Date.parse(cert.validTo) < Date.now() + 24 * 60 * 60 * 1000) return "expired or about to expire";
    return undefined;
  } catch (err) {
    return `unreadable: ${(err as Error).message}`;
  }
}

async function writeKeyPair(certPath: string, certPem: string, keyPath: string, keyPem: string): Promise<void> {
  await writePrivateFile(keyPath, keyPem);
  await writePublicFile(certPath, certPem);
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}
