import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { DownlinkSchema, type Downlink } from "../../../gen/tether/device/v1/downlink_pb.js";
import type { CertificateRenewalRequest } from "../../../gen/tether/device/v1/uplink_pb.js";
import type { Clock } from "../clock.js";
import { DEVICE_BOUNDS } from "../../protocol/device-bounds.js";
import { truncateUtf8 } from "../device-bounds.js";
import { TetherError } from "../errors.js";
import type { CoreLogger } from "../log.js";
import type { DeviceLink } from "../ports/index.js";
import type { CertificateRepository } from "../ports/certificates.js";
import type { CertificateService } from "./certificate-service.js";

const DAY_MS = 86_400_000;
const MAX_ERROR_BYTES = DEVICE_BOUNDS["tether.device.v1.CertificateUpdate.error"]!.maxBytes!;

export interface DeviceCertificatesDeps {
  service: CertificateService;
  certificates: CertificateRepository;
  link: DeviceLink;
  clock: Clock;
  log: CoreLogger;
  /** Warn a device when its newest certificate expires within this many days. */
  warningDays: number;
}

export type DeviceCertificates = ReturnType<typeof createDeviceCertificates>;

/**
 * The certificate conversation with devices over MQTT: a CSR uplink is answered with a
 * CertificateUpdate downlink (the certificate, or why not), and devices whose newest certificate
 * nears expiry get a CertificateExpiring downlink, at most once a day each.
 */
export function createDeviceCertificates(d: DeviceCertificatesDeps) {
  const { clock, log } = d;
  const envelope = (body: Downlink["body"]): Downlink => create(DownlinkSchema, { messageId: randomUUID(), sendTime: timestampFromDate(clock.now()), body });

  return {
    async renewalRequested(deviceId: string, req: CertificateRenewalRequest): Promise<void> {
      let body: Downlink["body"];
      try {
        const rec = await d.service.renewForDevice(deviceId, req.requestId, req.csr);
        body = {
          case: "certificate",
          value: {
            $typeName: "tether.device.v1.CertificateUpdate",
            requestId: req.requestId,
            serialNumber: rec.serialNumber,
            certificatePem: rec.certificatePem,
            expireTime: timestampFromDate(rec.notAfter),
            error: "",
          },
        };
      } catch (err) {
        if (!(err instanceof TetherError)) log.error({ err, deviceId }, "mqtt certificate renewal failed");
        const error = truncateUtf8(err instanceof TetherError ? `${err.code}: ${err.message}` : "internal error", MAX_ERROR_BYTES);
        body = {
          case: "certificate",
          value: { $typeName: "tether.device.v1.CertificateUpdate", requestId: req.requestId, serialNumber: "", certificatePem: "", error },
        };
      }
      await d.link.send(deviceId, envelope(body));
    },

    /** Sends due expiry warnings; returns how many devices were warned. */
    async warnExpiring(): Promise<number> {
      const now = clock.now();
      const due = await d.certificates.expiringSoon(new Date(now.getTime() + d.warningDays * DAY_MS), new Date(now.getTime() - DAY_MS), now, 500);
      const warned: string[] = [];
      for (const c of due) {
        try {
          await d.link.send(
            c.deviceId!,
            envelope({
              case: "certificateExpiring",
              value: { $typeName: "tether.device.v1.CertificateExpiring", serialNumber: c.serialNumber, expireTime: timestampFromDate(c.notAfter) },
            }),
          );
          warned.push(c.serialNumber);
        } catch (err) {
          log.warn({ err, deviceId: c.deviceId }, "certificate expiry warning not sent");
        }
      }
      if (warned.length > 0) {
        await d.certificates.markWarned(warned, now);
        log.info({ devices: warned.length }, "certificate expiry warnings sent");
      }
      return warned.length;
    },
  };
}
