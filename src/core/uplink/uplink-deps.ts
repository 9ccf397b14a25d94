import type { Device } from "../../../gen/tether/v1/device_pb.js";
import type { DeviceCertificates } from "../certificates/device-certificates.js";
import type { Clock } from "../clock.js";
import type { DeviceRepository } from "../ports/device-repository.js";
import type { CoreLogger } from "../log.js";
import type { ChangeFeed, Counters } from "../ports/index.js";
import type { Dispatcher } from "../tasks/dispatcher.js";
import type { Lifecycle } from "../tasks/task-lifecycle.js";
import type { TaskRepository } from "../ports/task-repository.js";
import type { TaskBatches } from "../tasks/task-batches.js";
import type { TelemetryIngest } from "../telemetry/ingest.js";
import type { UplinkReceipts } from "./receipts.js";

/** What the uplink processor needs; each envelope's handler takes the part it uses. */
export interface UplinkDeps {
  tasks: TaskRepository;
  devices: DeviceRepository;
  lifecycle: Lifecycle;
  dispatcher: Dispatcher;
  deviceFeed: ChangeFeed<Device>;
  clock: Clock;
  counters: Counters;
  log: CoreLogger;
  /** Where telemetry goes; without it, samples only count as liveness. */
  telemetry?: TelemetryIngest;
  /** Certificate renewal over MQTT; without it, renewal requests are dropped. */
  certificates?: Pick<DeviceCertificates, "renewalRequested">;
  /** End-to-end receipts for uplink sent with `receipt_requested`; without it, none are sent. */
  receipts?: Pick<UplinkReceipts, "done">;
  /**
   * How often heartbeats and keepalives may write a device's `last_seen_time`, ms
   * (`TETHER_LIVENESS_INTERVAL_S`). @default 60000
   */
  livenessIntervalMs?: number;
  /** The group commits for task words and reported state; without them, each item alone. */
  batches?: Pick<TaskBatches, "word" | "report">;
}

/** Drops a message a device sent: counted by reason and logged, never thrown (a device cannot make Tether throw). */
export type Drop = (deviceId: string, reason: string, extra?: object) => void;

export function dropper(d: Pick<UplinkDeps, "counters" | "log">): Drop {
  return (deviceId, reason, extra = {}) => {
    d.counters.inc("tether_uplink_dropped_total", { reason });
    d.log.warn({ deviceId, reason, ...extra }, "uplink dropped");
  };
}
