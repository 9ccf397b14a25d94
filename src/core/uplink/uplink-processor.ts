import { type Uplink, UplinkSchema } from "../../../gen/tether/device/v1/uplink_pb.js";
import { boundViolations } from "../device-bounds.js";
import type { UplinkItem } from "../ports/uplink-intake.js";
import { createLiveness } from "./liveness.js";
import { createPresence } from "./presence.js";
import { createReportedState } from "./reported-state.js";
import { createTaskEvents } from "./task-events.js";
import { dropper, type UplinkDeps } from "./uplink-deps.js";

export type { UplinkDeps } from "./uplink-deps.js";
export type UplinkProcessor = ReturnType<typeof createUplinkProcessor>;

/**
 * Turns what devices say into state: presence, acknowledgements, progress, results and reported
 * state, each envelope handled by its own module. The device id always comes from the transport
 * (topic or certificate), never from the payload, so a device can only speak for itself.
 */
export function createUplinkProcessor(d: UplinkDeps) {
  const drop = dropper(d);
  const liveness = createLiveness(d);
  const touch = liveness.spoke;
  const presence = createPresence(d, drop);
  const tasks = createTaskEvents(d, drop);
  const reported = createReportedState(d, drop);

  const processor = {
    /** Routes one item from any transport to the method for its kind. */
    process(item: UplinkItem): Promise<void> {
      switch (item.kind) {
        case "presence":
          return processor.presence(item.deviceId, { online: item.online, reason: item.reason, remoteAddress: item.remoteAddress });
        case "alive":
          return liveness.alive(item.deviceId);
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

    presence: presence.presence,

    /** A plain-number sample on `…/metrics/{metric}`. */
    async plainMetric(deviceId: string, metric: string, payload: string): Promise<void> {
      d.telemetry?.plain(deviceId, metric, payload);
      await touch(deviceId);
    },

    /** Returns false when the message was refused for now (telemetry queue full). */
    async handleBody(deviceId: string, up: Uplink): Promise<boolean | void> {
      const body = up.body;
      switch (body.case) {
        case "hello":
          return presence.hello(deviceId, body.value);
        case "currentTaskQuery":
          await touch(deviceId);
          return d.dispatcher.sendCurrentTask(deviceId);
        case "ack":
          return tasks.ack(deviceId, body.value);
        case "progress":
          return tasks.progress(deviceId, body.value);
        case "result":
          return tasks.result(deviceId, body.value);
        case "state":
          return reported(deviceId, body.value);
        case "telemetry": {
          const taken = d.telemetry?.batch(deviceId, body.value);
          await touch(deviceId);
          return taken;
        }
        case "heartbeat":
          return liveness.alive(deviceId);
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
