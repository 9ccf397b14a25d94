import { create } from "@bufbuild/protobuf";
import { durationMs, timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Aggregation, AggregationSchema, type TelemetrySample, TelemetryPointSchema } from "../../../gen/tether/v1/telemetry_pb.js";
import type { GetLatestTelemetryResponse, QueryTelemetryRequest, QueryTelemetryResponse } from "../../../gen/tether/v1/telemetry_service_pb.js";
import type { Access } from "../access/access.js";
import { createDeviceRights } from "../access/device-rights.js";
import type { Clock } from "../clock.js";
import { deviceName, parseDeviceName } from "../devices/device-name.js";
import type { DeviceRepository } from "../ports/device-repository.js";
import { NotFoundError, Violations } from "../errors.js";
import { decodePageToken, encodePageToken, resolvePageSize } from "../page-token.js";
import type { ChangeFeed } from "../ports/index.js";
import { watchFeed } from "../watch-feed.js";
import { type SampleRecord, toSampleProto } from "./sample.js";
import { METRIC_PATTERN } from "./sample-validation.js";
import type { TelemetryRepository } from "../ports/telemetry.js";

const DAY = 86_400_000;
export const STREAM_BUFFER = 10_000;

export interface TelemetryServiceDeps {
  store: TelemetryRepository;
  devices: DeviceRepository;
  feed: ChangeFeed<SampleRecord>;
  clock: Clock;
}

export type TelemetryService = ReturnType<typeof createTelemetryService>;

/** QueryTelemetry, GetLatestTelemetry and StreamTelemetry; each needs viewer on the device. */
export function createTelemetryService({ store, devices, feed, clock }: TelemetryServiceDeps) {
  const rights = createDeviceRights(devices);
  async function existing(access: Access, parent: string): Promise<string> {
    const id = parseDeviceName(parent, "parent");
    if (!(await devices.get(id))) throw new NotFoundError(deviceName(id));
    await rights.require(access, "device.read", id);
    return id;
  }

  return {
    async queryTelemetry(access: Access, req: QueryTelemetryRequest): Promise<QueryTelemetryResponse> {
      const v = new Violations();
      for (const [i, m] of req.metrics.entries()) if (!METRIC_PATTERN.test(m)) v.add(`metrics[${i}]`, `"${m.slice(0, 70)}" is not a metric name`);
      if (!req.startTime) v.add("start_time", "is required");
      const start = req.startTime ? timestampDate(req.startTime) : new Date(0);
      const end = req.endTime ? timestampDate(req.endTime) : clock.now();
      if (req.startTime && end.getTime() <= start.getTime()) v.add("end_time", "must be after start_time");
      if (end.getTime() - start.getTime() > 366 * DAY) v.add("end_time", "the range must be at most 366 days");
      const bucketMs = req.bucketWidth ? durationMs(req.bucketWidth) : 0;
      if (req.bucketWidth && (bucketMs < 1000 || bucketMs > 31 * DAY)) v.add("bucket_width", "must be between 1s and 31 days");
      if (!AggregationSchema.values.some((e) => e.number === req.aggregation)) v.add("aggregation", `unknown Aggregation ${req.aggregation}`);
      if (req.aggregation !== Aggregation.UNSPECIFIED && bucketMs === 0) v.add("aggregation", "needs bucket_width");
      if (req.pageSize < 0) v.add("page_size", "must not be negative");
      v.throwIfAny();
      const deviceId = await existing(access, req.parent);
      const limit = resolvePageSize(req.pageSize, 1000, 10_000);
      const query = `telemetry|${req.parent}|${req.metrics.join(",")}|${start.toISOString()}|${end.toISOString()}|${bucketMs}|${req.aggregation}`;
      const cursor = decodePageToken(req.pageToken, query);
      const after = cursor === undefined ? undefined : (JSON.parse(cursor) as { m: string; t: string });
      const rows = await store.query({
        deviceId,
        metrics: req.metrics,
        start,
        end,
        bucketMs,
        aggregation: req.aggregation,
        limit: limit + 1,
        after: after && { metric: after.m, time: new Date(after.t) },
      });
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      return {
        $typeName: "tether.v1.QueryTelemetryResponse",
        points: page.map((p) => create(TelemetryPointSchema, { metric: p.metric, time: timestampFromDate(p.time), value: p.value, count: BigInt(p.count) })),
        nextPageToken: rows.length > limit && last ? encodePageToken(JSON.stringify({ m: last.metric, t: last.time.toISOString() }), query) : "",
      };
    },

    async getLatestTelemetry(access: Access, parent: string): Promise<GetLatestTelemetryResponse> {
      const deviceId = await existing(access, parent);
      return { $typeName: "tether.v1.GetLatestTelemetryResponse", samples: (await store.latest(deviceId)).map(toSampleProto) };
    },

    /** Live samples; a consumer more than STREAM_BUFFER samples behind is cut off. */
    async *streamTelemetry(access: Access, parent: string, metrics: string[], signal: AbortSignal): AsyncGenerator<TelemetrySample> {
      const deviceId = parent === "devices/-" ? undefined : await existing(access, parent);
      const gate = rights.gate(access);
      const allow = access.all ? undefined : (s: SampleRecord) => gate(s.deviceId);
      const wanted = new Set(metrics);
      const match = (s: SampleRecord) => (deviceId === undefined || s.deviceId === deviceId) && (wanted.size === 0 || wanted.has(s.metric));
      for await (const s of watchFeed(feed, match, undefined, signal, STREAM_BUFFER, allow)) yield toSampleProto(s);
    },
  };
}
