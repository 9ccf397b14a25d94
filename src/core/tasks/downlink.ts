import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type Downlink, DownlinkSchema } from "../../../gen/tether/device/v1/downlink_pb.js";
import { DEVICE_BOUNDS } from "../../protocol/device-bounds.js";
import { truncateUtf8 } from "../device-bounds.js";
import { type TaskRecord, taskName } from "./task-record.js";

const MAX_REASON_BYTES = DEVICE_BOUNDS["tether.device.v1.CancelTask.reason"]!.maxBytes!;

/** Builds the Downlink envelopes the device receives; ids make every redelivery recognisable. */
export function taskRequest(t: TaskRecord, now: Date): Downlink {
  return create(DownlinkSchema, {
    messageId: randomUUID(),
    sendTime: timestampFromDate(now),
    body: {
      case: "task",
      value: {
        taskId: t.id,
        task: taskName(t.deviceId, t.id),
        attempt: t.attempt,
        deadline: timestampFromDate(t.expireTime),
        command: t.command,
        sequence: BigInt(t.sequence),
        priority: t.priority,
      },
    },
  });
}

export function cancelTask(t: TaskRecord, now: Date): Downlink {
  return create(DownlinkSchema, {
    messageId: randomUUID(),
    sendTime: timestampFromDate(now),
    // The reason quotes the canceller's text (up to 256 characters, so up to 768 bytes): cut to the bound.
    body: { case: "cancel", value: { taskId: t.id, reason: truncateUtf8(t.stateReason, MAX_REASON_BYTES) } },
  });
}

export function noPendingTask(now: Date): Downlink {
  return create(DownlinkSchema, { messageId: randomUUID(), sendTime: timestampFromDate(now), body: { case: "noPendingTask", value: {} } });
}
