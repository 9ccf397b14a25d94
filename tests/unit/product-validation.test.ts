import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { DeviceSchema } from "../../gen/tether/v1/device_pb.js";
import { validateDeviceFields, Violations } from "../../src/core/devices/device-validation.js";
import { PRODUCTS } from "../../src/core/products/index.js";

/** The violations a device's fields get, as `field: description` lines. */
function violations(device: ReturnType<typeof create<typeof DeviceSchema>>, only?: Set<string>): string[] {
  const v = new Violations();
  validateDeviceFields(device, "device", v, only);
  return v.list.map((x) => `${x.field}: ${x.description}`);
}

describe("desired state is validated by the product module, whatever the kind", () => {
  it("refuses a thermostat setpoint outside 5-35 °C on create and on an update of thermostat.desired", () => {
    const hot = create(DeviceSchema, { kind: { case: "thermostat", value: { desired: { setpointCelsius: 80 } } } });
    expect(violations(hot)).toEqual(["device.thermostat.desired.setpoint_celsius: must be between 5 and 35 °C"]);
    expect(violations(hot, new Set(["thermostat.desired"]))).toHaveLength(1);
    // An update that touches only labels does not re-validate the stored desired state.
    expect(violations(hot, new Set(["labels"]))).toEqual([]);
    const nan = create(DeviceSchema, { kind: { case: "thermostat", value: { desired: { setpointCelsius: Number.NaN } } } });
    expect(violations(nan)).toHaveLength(1);
  });

  it("accepts a setpoint in range and still validates the LED's desired state", () => {
    expect(violations(create(DeviceSchema, { kind: { case: "thermostat", value: { desired: { setpointCelsius: 21.5 } } } }))).toEqual([]);
    const led = create(DeviceSchema, { kind: { case: "led", value: { desired: { brightness: 150 } } } });
    expect(violations(led, new Set(["led.desired"]))).toEqual(["device.led.desired.brightness: must be a percentage between 0 and 100"]);
  });

  it("has one registered product per Device.kind case", () => {
    const cases = DeviceSchema.oneofs.find((o) => o.name === "kind")!.fields.map((f) => f.localName);
    expect(PRODUCTS.map((p) => p.case).sort()).toEqual([...cases].sort());
  });
});
