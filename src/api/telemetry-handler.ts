import type { ServiceImpl } from "@connectrpc/connect";
import type { TelemetryService as TelemetryServiceDesc } from "../../gen/tether/v1/telemetry_service_pb.js";
import type { TelemetryService } from "../core/telemetry/telemetry-service.js";
import { accessOf } from "./auth.js";

/** TelemetryService over Connect/gRPC. */
export function telemetryHandler(t: TelemetryService): ServiceImpl<typeof TelemetryServiceDesc> {
  return {
    queryTelemetry: (req, ctx) => t.queryTelemetry(accessOf(ctx), req),
    getLatestTelemetry: (req, ctx) => t.getLatestTelemetry(accessOf(ctx), req.parent),
    async *streamTelemetry(req, ctx) {
      for await (const sample of t.streamTelemetry(accessOf(ctx), req.parent, req.metrics, ctx.signal)) yield { sample };
    },
  };
}
