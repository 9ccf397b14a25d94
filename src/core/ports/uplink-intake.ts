import type { Uplink } from "../../../gen/tether/device/v1/uplink_pb.js";
import type { ConnectivityReason } from "../connectivity/connectivity-reason.js";

/**
 * One message a device said, whatever carried it (MQTT, HTTP, a durable queue). The device id
 * always comes from the transport's authentication (topic ACL or client certificate), never from
 * the payload.
 */
export type UplinkItem =
  | { kind: "uplink"; deviceId: string; uplink: Uplink }
  | { kind: "presence"; deviceId: string; online: boolean; reason?: ConnectivityReason; remoteAddress?: string }
  | { kind: "metric"; deviceId: string; metric: string; text: string }
  /** "Still here" without a message: an MQTT keepalive the embedded broker saw. */
  | { kind: "alive"; deviceId: string };

/**
 * Where transports hand uplink to. Every transport goes through one intake, so every path gets the
 * same guarantees: per-device order, idempotent processing, nothing a device sends can throw.
 * Embedded: processed in process (`src/bus/local-uplink.ts`). Production: a durable queue.
 */
export interface UplinkIntake {
  /**
   * Resolves once the item is safe: processed (embedded) or durably queued (production). Rejects
   * only when it could not be taken, so the transport can refuse or redeliver it.
   */
  submit(item: UplinkItem): Promise<void>;
  /** Resolves once everything submitted so far has been processed (or handed off durably). */
  drain(): Promise<void>;
}

/** Processes one uplink item; implemented by the uplink processor. */
export interface UplinkHandler {
  process(item: UplinkItem): Promise<void>;
}
