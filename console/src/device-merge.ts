import { clone } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { type Device, DeviceSchema } from "../../gen/tether/v1/device_pb.js";

/**
 * Combines two snapshots of one device that may arrive out of order: an UpdateDevice or GetDevice
 * answer can be overtaken by a WatchDevices change (a device reports the state it was just
 * told to take within milliseconds). The API-owned fields come from `next`; what the device itself tells Tether
 * (connectivity, reported state, firmware) comes from the snapshot Tether heard from it last,
 * so an older answer never hides a newer report.
 */
export function mergeDeviceSnapshot(prev: Device | undefined, next: Device): Device {
  if (!prev || prev.uid !== next.uid) return next;
  const heard = (d: Device) => (d.connectivity?.lastSeenTime ? timestampMs(d.connectivity.lastSeenTime) : 0);
  const merged = clone(DeviceSchema, next);
  if (merged.latestTelemetry.length === 0) merged.latestTelemetry = prev.latestTelemetry;
  if (heard(next) >= heard(prev)) return merged;
  merged.connectivity = prev.connectivity;
  merged.firmwareVersion = prev.firmwareVersion;
  // Every product message holds `desired` and `reported` (see src/core/products/product.ts).
  if (merged.kind.case !== undefined && merged.kind.case === prev.kind.case) {
    (merged.kind.value as { reported?: unknown }).reported = (prev.kind.value as { reported?: unknown }).reported;
  }
  return merged;
}
