/**
 * Publishes the CRL: regenerated from the database after every revocation (and daily, so it never
 * passes its nextUpdate), written atomically to `certs/crl.pem`, and kept in memory for the API's
 * `GET /crl.pem` and GetCertificateRevocationList.
 */
import { randomBytes } from "node:crypto";
import { rename, writeFile } from "node:fs/promises";
import type { Logger } from "pino";
import type { CertificateRepository, CrlSource } from "../core/ports/certificates.js";
import type { CertificateAuthority } from "./certificate-authority.js";

const DAY_MS = 86_400_000;
/** A CRL is valid this long; it is regenerated daily, so a week leaves room for downtime. */
const NEXT_UPDATE_MS = 7 * DAY_MS;

export interface CrlPublisher extends CrlSource {
  /** Regenerates and writes the CRL; concurrent calls coalesce into at most one more run. */
  refresh(): Promise<void>;
  /** The last CRL written (PEM), or undefined before the first refresh. */
  readonly pem: string | undefined;
}

export function createCrlPublisher(opts: { ca: CertificateAuthority; certificates: CertificateRepository; path: string; log: Logger }): CrlPublisher {
  let pem: string | undefined;
  let count = 0;
  let running: Promise<void> | undefined;
  let again = false;

  async function generate(): Promise<void> {
    const now = new Date();
    const revoked = await opts.certificates.listRevoked(now);
    const next = await opts.ca.createCrl(
      revoked.map((r) => ({ serialNumber: r.serialNumber, revocationDate: r.revokeTime!, reason: r.revocationReason ?? 0 })),
      new Date(now.getTime() + NEXT_UPDATE_MS),
    );
    // Unique per write: several publishers (replicas sharing a certs volume, or two apps in one test
    // process) may write the same file at once; each rename is atomic, the last one wins.
    const tmp = `${opts.path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
    await writeFile(tmp, next, { mode: 0o644 });
    await rename(tmp, opts.path); // readers never see half a file
    pem = next;
    count = revoked.length;
    opts.log.info({ path: opts.path, revoked: count }, "CRL published");
  }

  function refresh(): Promise<void> {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          again = false;
          await generate();
        } while (again);
      } finally {
        running = undefined;
      }
    })();
    return running;
  }

  return {
    refresh,
    get pem() {
      return pem;
    },
    async current() {
      if (pem === undefined) await refresh();
      return { pem: pem!, count };
    },
  };
}
