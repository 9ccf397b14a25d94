import { create } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UplinkSchema } from "../../gen/tether/device/v1/uplink_pb.js";
import type { Device } from "../../gen/tether/v1/device_pb.js";
import { CreateDeviceRequestSchema, UpdateDeviceRequestSchema } from "../../gen/tether/v1/device_service_pb.js";
import { FULL_ACCESS } from "../../src/core/access/access.js";
import { PRODUCTS } from "../../src/core/products/index.js";
import { type CoreHarness, wireCore } from "../helpers/core-harness.js";

/** Hello.firmware_version through core: the device's report becomes Device.firmware_version. */
describe("Hello firmware version", () => {
  let core: CoreHarness;
  const published: Device[] = [];
  beforeAll(async () => {
    core = await wireCore();
    core.deviceFeed.subscribe((d) => void published.push(d));
  });
  afterAll(() => core?.close());

  const product = PRODUCTS[0]!;
  let n = 0;
  const hello = (deviceId: string, firmwareVersion: string) =>
    core.uplink.process({
      kind: "uplink",
      deviceId,
      uplink: create(UplinkSchema, { messageId: `h-${++n}`, body: { case: "hello", value: { firmwareVersion } } }),
    });
  const get = (id: string) => core.devices.getDevice(FULL_ACCESS, `devices/${id}`);
  it("stores the reported version, moves the etag, keeps update_time, and announces the change", async () => {
    await core.devices.createDevice(
      FULL_ACCESS,
      create(CreateDeviceRequestSchema, { deviceId: "fw-1", device: { firmwareVersion: "1.0.0", kind: { case: product.case, value: {} } as Device["kind"] } }),
    );
    const created = await get("fw-1");
    published.length = 0;
    await hello("fw-1", "1.1.0");
    const after = await get("fw-1");
    expect(after.firmwareVersion).toBe("1.1.0");
    expect(after.etag).not.toBe(created.etag);
    expect(after.updateTime).toEqual(created.updateTime);
    expect(published.map((d) => [d.name, d.firmwareVersion])).toEqual([["devices/fw-1", "1.1.0"]]);
  });

  // The etag stays: the revision moves only with a write, so no row was written.
  it("writes and announces nothing when the version is the same, or not reported", async () => {
    const before = await get("fw-1");
    published.length = 0;
    await hello("fw-1", "1.1.0");
    await hello("fw-1", "");
    const after = await get("fw-1");
    expect(after.firmwareVersion).toBe("1.1.0");
    expect(after.etag).toBe(before.etag);
    expect(published).toEqual([]);
  });

  it("the device's report wins over a version set through the API", async () => {
    const current = await get("fw-1");
    await core.devices.updateDevice(
      FULL_ACCESS,
      create(UpdateDeviceRequestSchema, {
        device: { name: "devices/fw-1", firmwareVersion: "typed-by-hand", etag: current.etag },
        updateMask: { paths: ["firmware_version"] },
      }),
    );
    expect((await get("fw-1")).firmwareVersion).toBe("typed-by-hand");
    await hello("fw-1", "1.1.0");
    expect((await get("fw-1")).firmwareVersion).toBe("1.1.0");
  });

  it("an UpdateDevice holding the etag from before the report is refused, not written over it", async () => {
    const stale = await get("fw-1");
    await hello("fw-1", "2.0.0");
    await expect(
      core.devices.updateDevice(
        FULL_ACCESS,
        create(UpdateDeviceRequestSchema, { device: { name: "devices/fw-1", displayName: "x", etag: stale.etag }, updateMask: { paths: ["display_name"] } }),
      ),
    ).rejects.toMatchObject({ code: "ABORTED" });
    expect((await get("fw-1")).firmwareVersion).toBe("2.0.0");
  });

  it("a Hello from an unknown device is dropped, nothing stored", async () => {
    await hello("fw-nobody", "9");
    expect(core.counters.get("tether_uplink_dropped_total", { reason: "unknown_device" })).toBeGreaterThanOrEqual(1);
  });
});
