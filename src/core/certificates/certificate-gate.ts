import type { DeviceDeletion, DeviceRepository } from "../ports/device-repository.js";
import { reservedIdProblem } from "../reserved-ids.js";
import type { CertificateRepository } from "../ports/certificates.js";
import type { RevocationIndex } from "./revocation-index.js";

/** A client certificate as a transport saw it in the TLS handshake (our CA verified it). */
export interface PresentedCertificate {
  /** From the OU: `device` (devices), `claim` (claims); other kinds are not checked here. */
  kind: "device" | "claim";
  commonName: string;
  /** Lowercase hex. */
  serialNumber: string;
  notBefore: Date;
}

export interface CertificateGateDeps {
  revoked: RevocationIndex;
  /** Deletions known at start; later ones arrive through {@link CertificateGate.deviceDeleted}. */
  deletions: DeviceDeletion[];
  certificates: Pick<CertificateRepository, "get">;
  devices: Pick<DeviceRepository, "get">;
}

export type CertificateGate = ReturnType<typeof createCertificateGate>;

/**
 * What the broker and the API ask of every device or claim certificate before letting it speak:
 * not revoked, no reserved CN, and — for a device id that was deleted — issued for the device
 * incarnation that exists now. Certificates Tether issued are revoked when their device is
 * deleted; this also stops a certificate the CA signed outside Tether (offline) before the deletion,
 * which no revocation can name. The common path costs two in-memory lookups; only a certificate
 * older than its id's last deletion costs a query.
 */
export function createCertificateGate(d: CertificateGateDeps) {
  const lastDeletion = new Map<string, number>();
  const deviceDeleted = (deviceId: string, time: Date) => {
    if ((lastDeletion.get(deviceId) ?? 0) < time.getTime()) lastDeletion.set(deviceId, time.getTime());
  };
  for (const del of d.deletions) deviceDeleted(del.deviceId, del.deleteTime);

  return {
    deviceDeleted,

    /** Why this certificate is refused, or undefined if it may connect or call. */
    async refusal(c: PresentedCertificate): Promise<string | undefined> {
      if (d.revoked.has(c.serialNumber)) return `certificate ${c.serialNumber} (CN ${c.commonName}) is revoked`;
      const reserved = reservedIdProblem(c.commonName);
      if (reserved) return `certificate ${c.serialNumber} has a reserved CN: ${reserved}`;
      if (c.kind !== "device") return undefined;
      const deletedAt = lastDeletion.get(c.commonName);
      if (deletedAt === undefined || c.notBefore.getTime() >= deletedAt) return undefined;
      // Older than the last deletion of its id: only a certificate Tether issued for the current
      // incarnation (after re-creation, with its backdated notBefore) may still speak for it.
      const [rec, current] = await Promise.all([d.certificates.get(c.serialNumber), d.devices.get(c.commonName)]);
      if (rec && current && rec.kind === "device" && rec.deviceUid !== undefined && rec.deviceUid === current.device.uid) return undefined;
      return `certificate ${c.serialNumber} was issued before devices/${c.commonName} was deleted: it belongs to an earlier device with that id`;
    },
  };
}
