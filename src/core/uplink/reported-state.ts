import { toJson } from "@bufbuild/protobuf";
import type { ReportedState } from "../../../gen/tether/device/v1/uplink_pb.js";
import { productByCase } from "../products/index.js";
import type { Drop, UplinkDeps } from "./uplink-deps.js";

/**
 * A device's reported state, stored when newer than what Tether has (by the device's version) and
 * only for the device's own product: a device cannot report itself as another product. The
 * common case is one set-based UPDATE with other devices' reports (the group commit in
 * `batches`), whose WHERE holds both checks; when it changes nothing, the device is read to tell
 * which check refused.
 */
export function createReportedState(d: Pick<UplinkDeps, "devices" | "deviceFeed" | "counters" | "clock" | "batches">, drop: Drop) {
  return async (deviceId: string, state: ReportedState): Promise<void> => {
    const kind = state.kind;
    if (kind.case === undefined) return drop(deviceId, "wrong_product", { got: kind.case });
    const product = productByCase(kind.case);
    const json = toJson(product.reportedSchema, kind.value as never);
    const version = Number(state.version);
    if (d.batches) {
      const stored = await d.batches.report({ id: deviceId, kindName: product.kindName, version, reported: json });
      if (stored) return d.deviceFeed.publish(stored.device);
    }
    const stored = await d.devices.get(deviceId);
    if (!stored) return drop(deviceId, "unknown_device");
    if (kind.case !== stored.device.kind.case) return drop(deviceId, "wrong_product", { got: kind.case });
    const res = await d.devices.applyReported(deviceId, version, json, d.clock.now());
    if (res === "stale") d.counters.inc("tether_reported_state_stale_total");
    else if (res !== "unknown") d.deviceFeed.publish(res.device);
  };
}
