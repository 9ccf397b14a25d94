import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type TelemetrySample, TelemetrySampleSchema } from "../../../gen/tether/v1/telemetry_pb.js";

/** A validated sample on its way to storage and to live watchers. */
export interface SampleRecord {
  deviceId: string;
  metric: string;
  time: Date;
  value: number;
  tags: Record<string, string>;
}

/** Canonical form of the tags, part of a sample's identity (so redelivery de-duplicates). */
export function tagsKey(tags: Record<string, string>): string {
  // Most samples have no tags: skip the sort and joins (the writer calls this per sample).
  for (const _ in tags) return canonical(tags);
  return "";
}

function canonical(tags: Record<string, string>): string {
  return Object.keys(tags)
    .sort()
    .map((k) => `${k}=${tags[k]}`)
    .join(",");
}

export function toSampleProto(s: SampleRecord): TelemetrySample {
  return create(TelemetrySampleSchema, {
    device: `devices/${s.deviceId}`,
    metric: s.metric,
    value: s.value,
    time: timestampFromDate(s.time),
    tags: s.tags,
  });
}
