import type { ServiceImpl } from "@connectrpc/connect";
import type { TelemetryService as TelemetryServiceDesc } from "../../gen/tether/v1/telemetry_service_pb.js";
import type { TelemetryService } from "../core/telemetry/telemetry-service.js";

/** TelemetryService over Connect/gRPC. */
export function telemetryHandler(t: TelemetryService): ServiceImpl<typeof TelemetryServiceDesc> {
  return {
    queryTelemetry: (req) => t.queryTelemetry(req),
    getLatestTelemetry: (req) => t.getLatestTelemetry(req.parent),
    async *streamTelemetry(req, ctx) {
      for await (const sample of t.streamTelemetry(req.parent, req.metrics, ctx.signal)) yield { sample };
    },
  };
}
