import { TelemetryService } from "../../gen/tether/v1/telemetry_service_pb.js";
import { toolInput } from "./json-schema.js";
import { call, requestFrom, type ToolDef, methodTool } from "./tool.js";

const m = TelemetryService.method;
const HOUR = 3_600_000;
const DEFAULT_POINTS = 300;

/** Telemetry: a range of a device's measurements (raw or in buckets) and its latest values. */
export const telemetryTools: ToolDef[] = [
  {
    name: "query_telemetry",
    description:
      'Read a device\'s measurements (`parent`: devices/{device}) from start_time (default: an hour ago), 300 points a page by default; bucket_width (e.g. "60s") averages into buckets.',
    inputSchema: toolInput(m.queryTelemetry.input, {
      pick: ["parent", "metrics", "start_time", "end_time", "bucket_width", "aggregation", "page_size", "page_token"],
      required: ["parent"],
    }),
    annotations: { title: "Query telemetry", readOnlyHint: true },
    run: (api, args, signal) => {
      // The API requires a start; an agent asking "what is the temperature doing" means lately.
      const start = args.start_time ?? new Date(Date.now() - HOUR).toISOString();
      // The API's default page (1,000 points) is more than an agent reads; it pages or buckets for more.
      const pageSize = args.page_size ?? DEFAULT_POINTS;
      return call(api, m.queryTelemetry, requestFrom(m.queryTelemetry.input, { ...args, start_time: start, page_size: pageSize }), signal);
    },
  },
  methodTool(m.getLatestTelemetry, {
    name: "latest_telemetry",
    description: "The latest value of each metric a device (`parent`: devices/{device}) sent.",
    inputSchema: toolInput(m.getLatestTelemetry.input, { pick: ["parent"], required: ["parent"] }),
    annotations: { title: "Latest telemetry", readOnlyHint: true },
  }),
];
