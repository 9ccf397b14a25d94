import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { EmptySchema } from "@bufbuild/protobuf/wkt";
import type { DeviceService as DeviceServiceDesc } from "../../gen/tether/v1/device_service_pb.js";
import type { DeviceService } from "../core/devices/device-service.js";

/** DeviceService over Connect/gRPC: a thin shell; validation and rules live in the core. */
export function deviceHandler(devices: DeviceService): ServiceImpl<typeof DeviceServiceDesc> {
  return {
    createDevice: (req) => devices.createDevice(req),
    getDevice: (req) => devices.getDevice(req.name),
    listDevices: (req) => devices.listDevices(req),
    updateDevice: (req) => devices.updateDevice(req),
    async deleteDevice(req) {
      await devices.deleteDevice(req);
      return create(EmptySchema);
    },
  };
}
