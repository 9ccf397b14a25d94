import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { EmptySchema } from "@bufbuild/protobuf/wkt";
import type { DeviceService as DeviceServiceDesc } from "../../gen/tether/v1/device_service_pb.js";
import type { ConnectivityService } from "../core/connectivity/connectivity-service.js";
import type { DeviceService } from "../core/devices/device-service.js";
import type { createDeviceWatch } from "../core/devices/device-watch.js";
import { accessOf } from "./auth.js";

/** DeviceService over Connect/gRPC: a thin shell; validation and rights live in the core. */
export function deviceHandler(
  devices: DeviceService,
  watch: ReturnType<typeof createDeviceWatch>,
  connectivity: Pick<ConnectivityService, "listConnectivityEvents">,
): ServiceImpl<typeof DeviceServiceDesc> {
  return {
    createDevice: (req, ctx) => devices.createDevice(accessOf(ctx), req),
    getDevice: (req, ctx) => devices.getDevice(accessOf(ctx), req.name),
    listDevices: (req, ctx) => devices.listDevices(accessOf(ctx), req),
    updateDevice: (req, ctx) => devices.updateDevice(accessOf(ctx), req),
    async deleteDevice(req, ctx) {
      await devices.deleteDevice(accessOf(ctx), req);
      return create(EmptySchema);
    },
    watchDevices: (req, ctx) => watch.watchDevices(accessOf(ctx), req.filter, ctx.signal),
    countDevices: (req, ctx) => devices.countDevices(accessOf(ctx), req),
    listConnectivityEvents: (req, ctx) => connectivity.listConnectivityEvents(accessOf(ctx), req),
  };
}
