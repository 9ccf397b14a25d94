import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { DeviceGatewayService } from "../../gen/tether/device/v1/gateway_service_pb.js";
import type { DeviceGateway } from "../core/gateway/device-gateway.js";
import { InvalidArgumentError, PermissionDeniedError } from "../core/errors.js";
import { kPrincipal } from "./auth.js";

/**
 * DeviceGatewayService over Connect/gRPC: the device protocol for devices on HTTP. The device id
 * is the caller's certificate CN (the auth interceptor lets only device certificates in here),
 * never a field of the request.
 */
export function gatewayHandler(gateway: DeviceGateway): ServiceImpl<typeof DeviceGatewayService> {
  return {
    async publishUplink(req, ctx) {
      const accepted = await gateway.publish(callerDevice(ctx), req.uplinks);
      return { acceptedCount: accepted };
    },
    async pollDownlink(req, ctx) {
      const d = req.listenDuration;
      if (d && (d.seconds < 0n || d.nanos < 0)) throw InvalidArgumentError.field("listen_duration", "must not be negative");
      const listenMs = d ? Math.min(Number(d.seconds), 86_400) * 1000 + Math.floor(d.nanos / 1e6) : 0;
      const r = await gateway.poll(callerDevice(ctx), { listenMs, desiredVersion: req.desiredVersion }, ctx.signal);
      return { downlinks: r.downlinks, listenUntilTime: timestampFromDate(r.listenUntil) };
    },
  };
}

function callerDevice(ctx: HandlerContext): string {
  const p = ctx.values.get(kPrincipal);
  if (p?.kind !== "device") throw new PermissionDeniedError("only devices may call the device gateway");
  return p.id;
}
