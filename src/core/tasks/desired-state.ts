import { randomUUID } from "node:crypto";
import { create, type Message } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type Downlink, DownlinkSchema } from "../../../gen/tether/device/v1/downlink_pb.js";
import type { StoredDevice } from "../ports/device-repository.js";

/** The DesiredState downlink for a device's current desired state and version. */
export function desiredStateMessage(stored: StoredDevice, now: Date): Downlink | undefined {
  const { kind } = stored.device;
  const desired = (kind.value as { desired?: Message } | undefined)?.desired;
  if (!kind.case || !desired) return undefined;
  return create(DownlinkSchema, {
    messageId: randomUUID(),
    sendTime: timestampFromDate(now),
    body: {
      case: "desiredState",
      value: { version: BigInt(stored.desiredVersion), kind: { case: kind.case, value: desired } as never },
    },
  });
}
