import { type Audit, PROVISION_OVER_MQTT } from "./audit.js";
import { templateName } from "../core/certificates/certificate-name.js";
import { hostname } from "node:os";
import path from "node:path";
import { createCertificateGate } from "../core/certificates/certificate-gate.js";
import { createCertificateService } from "../core/certificates/certificate-service.js";
import { createDeviceCertificates } from "../core/certificates/device-certificates.js";
import { answerProvisioning } from "../core/certificates/mqtt-provisioning.js";
import { createProvisioningService } from "../core/certificates/provisioning-service.js";
import { createRevocationIndex } from "../core/certificates/revocation-index.js";
import type { DeviceLink } from "../core/ports/index.js";
import type { EmbeddedBroker } from "../link/embedded-broker.js";
import { connectProvisioningLink } from "../link/provisioning-link.js";
import { createCertificateIssuer, describeCertificate } from "../pki/certificate-issuer.js";
import { createCrlPublisher } from "../pki/crl-publisher.js";
import { issueServiceCertificate } from "../pki/dev-pki.js";
import type { Infrastructure } from "./infrastructure.js";

/** The certificate identity the dev PKI issues for the CLI: always an admin, so nobody is locked out. */
export const BOOTSTRAP_ADMIN = "admin";

/**
 * What every connection and call is checked against, needed before the broker and API listen.
 * The database is the record of revocations; this in-memory index is the hot path, and the
 * revocation feed keeps it current.
 */
export async function createCertificateChecks(x: Infrastructure) {
  const certificateStore = x.stores.certificates;
  const revoked = createRevocationIndex((await certificateStore.listRevoked(new Date())).map((c) => c.serialNumber));
  const isRevoked = (serial: string) => revoked.has(serial);
  // Every device or claim certificate passes this gate (revoked, reserved CN, older than its id's deletion).
  const certificateGate = createCertificateGate({
    revoked,
    deletions: await x.stores.devices.deletions(),
    certificates: certificateStore,
    devices: x.stores.devices,
  });
  const checkCertificate = certificateGate.refusal;
  const crl = createCrlPublisher({
    ca: x.pki.ca,
    certificates: certificateStore,
    path: path.join(x.config.certsDir, "crl.pem"),
    log: x.log.child({ component: "pki" }),
  });
  await crl.refresh();
  return { revoked, isRevoked, certificateGate, checkCertificate, crl };
}

export type CertificateChecks = Awaited<ReturnType<typeof createCertificateChecks>>;

/** Issuing, renewing and revoking certificates, provisioning by claim, and expiry warnings. */
export async function startCertificates(x: Infrastructure, checks: CertificateChecks, link: { broker?: EmbeddedBroker; bridge: DeviceLink; audit: Audit }) {
  const { config, coreLog, clock, pki } = x;
  const { crl } = checks;
  const certificateStore = x.stores.certificates;
  const deviceStore = x.stores.devices;
  const { revocations, deviceFeed } = x.feeds;
  const issuer = createCertificateIssuer(pki.ca);
  const certificates = createCertificateService({
    certificates: certificateStore,
    devices: deviceStore,
    issuer,
    crl,
    revocations,
    clock,
    log: coreLog,
    defaultValidityDays: config.certificates.deviceValidityDays,
  });
  // The bootstrap admin certificate is an ordinary certificate: listed (users/admin) and revocable.
  const adminCert = await certificates.recordUserCertificate(BOOTSTRAP_ADMIN, describeCertificate(pki.admin.certPem));
  if (adminCert.revokeTime)
    x.log
      .child({ component: "pki" })
      .warn(
        { path: pki.paths.admin.cert, serialNumber: adminCert.serialNumber },
        "the admin client certificate is revoked: remove admin.crt and admin.key from the certs directory to get a new one at the next start",
      );
  const provisioning = createProvisioningService({
    provisioning: x.stores.provisioning,
    certificates: certificateStore,
    devices: deviceStore,
    issuer,
    crl,
    revocations,
    clock,
    log: coreLog,
    defaultValidityDays: config.certificates.deviceValidityDays,
    onDeviceCreated: (device) => deviceFeed.publish(device),
  });
  // Claim certificates may also provision over MQTT (for devices without an HTTP/2 stack). Only
  // the embedded broker enforces the claims' topic ACL so far, so only it gets the topic pair.
  if (link.broker) {
    const service = await issueServiceCertificate(pki.ca, "tether");
    const provisioningLink = await connectProvisioningLink({
      url: `mqtts://${config.mqtt.host === "0.0.0.0" ? "127.0.0.1" : config.mqtt.host}:${link.broker.port}`,
      tls: { ca: pki.caPem, cert: service.certPem, key: service.keyPem },
      clientId: `tether-provisioning-${hostname()}-${process.pid}`,
      maxPayloadBytes: config.mqtt.maxPayloadBytes,
      counters: x.counters,
      log: x.log.child({ component: "provisioning" }),
      handle: (templateId, req) =>
        link.audit.asDevice({ principal: templateName(templateId), method: PROVISION_OVER_MQTT, resource: templateName(templateId) }, () =>
          answerProvisioning(provisioning, templateId, req, coreLog),
        ),
    });
    x.life.add({ name: "provisioning link", stop: () => provisioningLink.close() });
  }
  const deviceCertificates = createDeviceCertificates({
    service: certificates,
    certificates: certificateStore,
    link: link.bridge,
    clock,
    log: coreLog,
    warningDays: config.certificates.expiryWarningDays,
  });
  const warnExpiring = () => deviceCertificates.warnExpiring().catch((err: unknown) => (coreLog.error({ err }, "certificate expiry check failed"), 0));
  return { certificates, provisioning, deviceCertificates, warnExpiring };
}

export type Certificates = Awaited<ReturnType<typeof startCertificates>>;
