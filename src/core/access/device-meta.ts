import type { Device } from "../../../gen/tether/v1/device_pb.js";
import { parseDeviceName } from "../devices/device-name.js";
import { productByCase } from "../products/index.js";
import type { DeviceMeta } from "./selector.js";

/** The rights-relevant view of a device. */
export function metaOf(device: Device): DeviceMeta {
  return {
    id: parseDeviceName(device.name),
    kind: device.kind.case ? productByCase(device.kind.case).kindName : "",
    labels: device.labels,
    owner: device.owner,
  };
}
