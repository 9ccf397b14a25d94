import { toJson } from "@bufbuild/protobuf";
import { type Uplink, UplinkSchema } from "../../../gen/tether/device/v1/uplink_pb.js";
import type { Device } from "../../../gen/tether/v1/device_pb.js";
import type { Clock } from "../clock.js";
import type { DeviceRepository } from "../devices/device-repository.js";
import type { CoreLogger } from "../log.js";
import type { ChangeFeed, Counters } from "../ports.js";
import type { UplinkItem } from "../uplink.js";
import { productByCase } from "../products/index.js";
import type { TelemetryIngest } from "../telemetry/ingest.js";
import type { UplinkReceipts } from "../uplink-receipts.js";
import type { DeviceCertificates } from "../certificates/device-certificates.js";
import { boundViolations } from "../device-bounds.js";
import type { Dispatcher } from "./dispatcher.js";
import type { Lifecycle } from "./task-lifecycle.js";
import type { TaskRecord } from "./task-record.js";
import type { TaskRepository } from "./task-repository.js";
import { State } from "./task-state.js";

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
}

export type UplinkProcessor = ReturnType<typeof createUplinkProcessor>;

/**
 * Turns what devices say into state: presence, acknowledgements, progress, results and reported
 * state. The device id always comes from the transport (topic or certificate), never from the
 * payload, so a device can only speak for itself. Unknown or foreign task ids are dropped and
 * counted; duplicates are recorded as late and change nothing.
 */
export function createUplinkProcessor(d: UplinkDeps) {
  const { tasks, devices, lifecycle, dispatcher, clock, counters, log } = d;
  const drop = (deviceId: string, reason: string, extra: object = {}) => {
    counters.inc("tether_uplink_dropped_total", { reason });
    log.warn({ deviceId, reason, ...extra }, "uplink dropped");
  };

  // last_seen_time is written at most once a second per device: a device streaming telemetry must
  // not cost one UPDATE per message (measured: it halved single-sample ingestion).
  const TOUCH_EVERY_MS = 1000;
  const touched = new Map<string, number>();
  /**
   * Best effort: a failed write (database away) is only logged. The message is handled either
   * way, and throwing here would hold back the receipt of telemetry already queued for storage,
   * so the device would resend it only after its timeout.
   */
  async function touch(deviceId: string): Promise<void> {
    await touchNow(deviceId).catch((err: unknown) => log.debug({ err, deviceId }, "last_seen_time not written"));
  }
  async function touchNow(deviceId: string): Promise<void> {
    const now = clock.now();
    if (now.getTime() - (touched.get(deviceId) ?? 0) < TOUCH_EVERY_MS) return;
    if (touched.size >= 100_000) touched.clear();
    touched.set(deviceId, now.getTime());
    await devices.touch(deviceId, now);
  }

  async function taskOf(deviceId: string, taskId: string): Promise<TaskRecord | undefined> {
    const t = await tasks.get(taskId);
    if (!t) return void drop(deviceId, "unknown_task", { taskId });
    if (t.deviceId !== deviceId) return void drop(deviceId, "foreign_task", { taskId });
    return t;
  }

  async function afterTaskEvent(deviceId: string, from: State, to: State) {
    // A slot may have opened for a device with a one-at-a-time policy.
    if (from !== to) await dispatcher.kick(deviceId);
  }

  const processor = {
    /** Routes one item from any transport to the method for its kind. */
    process(item: UplinkItem): Promise<void> {
      switch (item.kind) {
        case "presence":
          return processor.presence(item.deviceId, item.online);
        case "metric":
          return processor.plainMetric(item.deviceId, item.metric, item.text);
        case "uplink":
          return processor.handle(item.deviceId, item.uplink);
      }
    },

    /** An envelope; receipted afterwards when it asked for that and was taken (not refused for now). */
    async handle(deviceId: string, up: Uplink): Promise<void> {
      // Over a bound of the contract: refused whole, with the first field and its bound in the
      // log. A resend cannot change that, so a requested receipt still goes out (the device may
      // forget the message) unless the message_id itself is over its bound.
      const over = boundViolations(UplinkSchema, up, 1);
      if (over.length > 0) {
        drop(deviceId, "over_bound", { field: over[0]!.field, why: over[0]!.description });
        if (up.receiptRequested) d.receipts?.done(deviceId, up.messageId, up.maxReceiptIds);
        return;
      }
      const taken = await processor.handleBody(deviceId, up);
      if (up.receiptRequested && taken !== false) d.receipts?.done(deviceId, up.messageId, up.maxReceiptIds);
    },

    /** A connect (true) or disconnect (false) seen by the broker. */
    async presence(deviceId: string, online: boolean): Promise<void> {
      const known = await devices.setPresence(deviceId, online, clock.now());
      if (!known) return drop(deviceId, "unknown_device");
      const stored = await devices.get(deviceId);
      if (stored) d.deviceFeed.publish(stored.device);
      if (online) await dispatcher.onHello(deviceId);
    },

    /** A plain-number sample on `…/metrics/{metric}`. */
    async plainMetric(deviceId: string, metric: string, payload: string): Promise<void> {
      d.telemetry?.plain(deviceId, metric, payload);
      await touch(deviceId);
    },

    /** Returns false when the message was refused for now (telemetry queue full). */
    async handleBody(deviceId: string, up: Uplink): Promise<boolean | void> {
      const body = up.body;
      switch (body.case) {
        case "hello": {
          if (!(await devices.setPresence(deviceId, true, clock.now()))) return drop(deviceId, "unknown_device");
          if (body.value.wantPendingTasks) await dispatcher.onHello(deviceId);
          else await dispatcher.sendDesiredState(deviceId);
          return;
        }
        case "currentTaskQuery":
          await touch(deviceId);
          return dispatcher.sendCurrentTask(deviceId);
        case "ack": {
          const t = await taskOf(deviceId, body.value.taskId);
          if (!t) return;
          const r = await lifecycle.apply(t, { type: "ack" }, (next, now) => {
            next.deliverTime = now;
            next.deadlineTime = new Date(now.getTime() + next.executionTimeoutMs);
            next.nextAttemptTime = undefined;
          }, `attempt ${body.value.attempt}`);
          return afterTaskEvent(deviceId, r.from, r.task.state);
        }
        case "progress": {
          const t = await taskOf(deviceId, body.value.taskId);
          if (!t) return;
          const { percent, message } = body.value;
          const r = await lifecycle.apply(t, { type: "progress" }, (next, now) => {
            next.progress = { percent: Math.min(100, percent), message: message.slice(0, 256) };
            next.deliverTime ??= now;
            next.deadlineTime ??= new Date(now.getTime() + next.executionTimeoutMs);
            next.nextAttemptTime = undefined;
          });
          return afterTaskEvent(deviceId, r.from, r.task.state);
        }
        case "result": {
          const t = await taskOf(deviceId, body.value.taskId);
          if (!t) return;
          const o = body.value.outcome;
          if (o.case === undefined) return drop(deviceId, "malformed", { taskId: t.id, why: "result without outcome" });
          const outcome = o.case === "success" ? "succeeded" : o.case === "rejected" ? "rejected" : "failed";
          const r = await lifecycle.apply(t, { type: "result", outcome }, (next) => {
            if (o.case === "success") {
              next.result = o.value;
              next.stateReason = "the device reported success";
            } else if (o.case === "rejected") {
              next.stateReason = o.value.reason.slice(0, 1024) || "rejected by the device";
            } else {
              next.error = { code: o.value.code.slice(0, 128), message: o.value.message.slice(0, 1024), details: o.value.details };
              next.stateReason = `the device failed: ${next.error.code || "ERROR"}`;
            }
          });
          return afterTaskEvent(deviceId, r.from, r.task.state);
        }
        case "state": {
          const stored = await devices.get(deviceId);
          if (!stored) return drop(deviceId, "unknown_device");
          const kind = body.value.kind;
          if (kind.case !== stored.device.kind.case) return drop(deviceId, "wrong_product", { got: kind.case });
          const product = productByCase(kind.case!);
          const json = toJson(product.reportedSchema, kind.value as never);
          const res = await devices.applyReported(deviceId, Number(body.value.version), json, clock.now());
          if (res === "stale") counters.inc("tether_reported_state_stale_total");
          else if (res !== "unknown") d.deviceFeed.publish(res.device);
          return;
        }
        case "telemetry": {
          const taken = d.telemetry?.batch(deviceId, body.value);
          await touch(deviceId);
          return taken;
        }
        case "certificateRenewal":
          if (!d.certificates) return drop(deviceId, "unsupported");
          await touch(deviceId);
          return d.certificates.renewalRequested(deviceId, body.value);
        default:
          return drop(deviceId, "empty_uplink");
      }
    },
  };
  return processor;
}
