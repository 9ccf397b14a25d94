import { TelemetryService } from "../../gen/tether/v1/telemetry_service_pb.js";
import { toolInput } from "./json-schema.js";
import { call, requestFrom, type ToolDef, methodTool } from "./tool.js";

const m = TelemetryService.method;
const HOUR = 3_600_000;

/** Telemetry: a range of a device's measurements (raw or in buckets) and its latest values. */
export const telemetryTools: ToolDef[] = [
  {
    name: "query_telemetry",
    description:
      'Read a device\'s measurements (`parent`: devices/{device}) from start_time (default: an hour ago); bucket_width (e.g. "60s") averages into buckets.',
    inputSchema: toolInput(m.queryTelemetry.input, {
      pick: ["parent", "metrics", "start_time", "end_time", "bucket_width", "aggregation", "page_size", "page_token"],
      required: ["parent"],
    }),
    annotations: { title: "Query telemetry", readOnlyHint: true },
    run: (api, args, signal) => {
      // The API requires a start; an agent asking "what is the temperature doing" means lately.
      const start = args.start_time ?? new Date(Date.now() - HOUR).toISOString();
      return call(api, m.queryTelemetry, requestFrom(m.queryTelemetry.input, { ...args, start_time: start }), signal);
    },
  },
  methodTool(m.getLatestTelemetry, {
    name: "latest_telemetry",
    description: "The latest value of each metric a device (`parent`: devices/{device}) sent.",
    inputSchema: toolInput(m.getLatestTelemetry.input, { pick: ["parent"], required: ["parent"] }),
    annotations: { title: "Latest telemetry", readOnlyHint: true },
  }),
];
