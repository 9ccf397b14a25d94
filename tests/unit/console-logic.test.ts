import { create } from "@bufbuild/protobuf";
import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import { type Device, DeviceSchema } from "../../gen/tether/v1/device_pb.js";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { mergeDeviceSnapshot } from "../../console/src/device-merge.js";
import { buildFilter } from "../../console/src/filter.js";
import { fieldsUnder, readable } from "../../console/src/errors.js";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { loadConfig } from "../../src/config.js";
import { parseDeviceFilter } from "../../src/core/devices/device-filter.js";

describe("web console logic", () => {
  it("builds ListDevices filters that the server's parser accepts", () => {
    const f = buildFilter("coffee_machine", 'room=kitchen, floor, note=say "hi"', "true");
    expect(f).toBe('kind = "coffee_machine" AND labels.room = "kitchen" AND labels.floor:* AND labels.note = "say \\"hi\\"" AND online = true');
    expect(() => parseDeviceFilter(f)).not.toThrow();
    expect(buildFilter("", "", "")).toBe("");
  });

  it("turns a gRPC status into a sentence, a code and per-field reasons", () => {
    const err = new ConnectError("rule.cron.expression: invalid cron expression", Code.InvalidArgument, undefined, [
      { desc: BadRequestSchema, value: create(BadRequestSchema, { fieldViolations: [{ field: "rule.cron.expression", description: "invalid cron expression" }, { field: "rule_id", description: "must be lowercase" }] }) },
    ]);
    const r = readable(err);
    expect(r.code).toBe("INVALID_ARGUMENT");
    expect(r.message).toBe("rule.cron.expression: invalid cron expression");
    expect(fieldsUnder(r.fields, "rule.cron")).toEqual(["expression: invalid cron expression"]);
    expect(fieldsUnder(r.fields, "rule_id")).toEqual(["must be lowercase"]);
    expect(readable(new ConnectError("devices/x", Code.NotFound)).message).toBe("Not found: devices/x");
    expect(loadConfig({}).consoleDir.endsWith("console/dist")).toBe(true);
  });
});

describe("mergeDeviceSnapshot", () => {
  const at = (ms: number) => timestampFromMs(ms);
  const led = (desired: number, reported: number, seenMs: number) =>
    create(DeviceSchema, {
      name: "devices/l",
      uid: "u-1",
      connectivity: { online: true, lastSeenTime: at(seenMs) },
      kind: { case: "led", value: { desired: { brightness: desired }, reported: { brightness: reported } } },
    });
  const brightness = (d: Device) => (d.kind.case === "led" ? [d.kind.value.desired?.brightness, d.kind.value.reported?.brightness] : []);

  it("keeps a newer report when an older UpdateDevice answer arrives after a WatchDevices change", () => {
    const fromWatch = led(80, 80, 2000); // the LED already reported the new value
    const fromUpdate = led(80, 10, 1000); // the answer to the update that asked for it
    expect(brightness(mergeDeviceSnapshot(fromWatch, fromUpdate))).toEqual([80, 80]);
    expect(timestampMs(mergeDeviceSnapshot(fromWatch, fromUpdate).connectivity!.lastSeenTime!)).toBe(2000);
  });

  it("takes everything from the newer snapshot, and ignores a snapshot of another device (re-created)", () => {
    expect(brightness(mergeDeviceSnapshot(led(10, 10, 1000), led(80, 80, 2000)))).toEqual([80, 80]);
    const recreated = create(DeviceSchema, { ...led(5, 5, 500), uid: "u-2" });
    expect(brightness(mergeDeviceSnapshot(led(80, 80, 2000), recreated))).toEqual([5, 5]);
    expect(brightness(mergeDeviceSnapshot(undefined, led(1, 2, 3)))).toEqual([1, 2]);
  });
});

