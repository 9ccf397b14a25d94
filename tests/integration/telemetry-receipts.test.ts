import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UplinkSchema } from "../../gen/tether/device/v1/uplink_pb.js";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { TelemetryService } from "../../gen/tether/v1/telemetry_service_pb.js";
import { uplinkTopic } from "../../src/protocol/topics.js";
import { coffeeSim, eventually, rawDevice } from "../helpers/devices.js";
import { connectClient, freePort, startTestStack, type TestStack } from "../helpers/stack.js";

let s: TestStack;
beforeAll(async () => {
  // Fixed ports: the device reconnects to the same address after the restart.
  s = await startTestStack({ TETHER_PORT: String(await freePort()), TETHER_MQTT_PORT: String(await freePort()) });
});
afterAll(async () => {
  await s?.cleanup();
});

const HOUR = 3_600_000;
const base = Math.floor((Date.now() - 2 * HOUR) / HOUR) * HOUR;
const at = (ms: number) => timestampFromDate(new Date(base + ms));
const sensor = (id: string) =>
  connectClient(s, DeviceService, "connect").createDevice({ deviceId: id, device: { kind: { case: "coffeeMachine", value: {} } } });
/** The stored values of `metric` for a device, in time order. */
async function storedValues(deviceId: string, metric: string): Promise<number[]> {
  const r = await connectClient(s, TelemetryService, "grpc").queryTelemetry({
    parent: `devices/${deviceId}`,
    metrics: [metric],
    startTime: at(0),
    endTime: at(HOUR),
    pageSize: 10_000,
  });
  return r.points.map((p) => p.value);
}

describe("end-to-end telemetry receipts", () => {
  it("receipts a message only once its samples are stored, and only when asked", async () => {
    await sensor("rc-raw");
    const dev = await rawDevice(s, "rc-raw");
    try {
      const publish = async (messageId: string, value: number, receiptRequested: boolean) => {
        const up = create(UplinkSchema, {
          messageId,
          receiptRequested,
          body: { case: "telemetry", value: { samples: [{ metric: "level", value, time: at(value * 1000) }] } },
        });
        await dev.client.publishAsync(uplinkTopic("rc-raw"), Buffer.from(toBinary(UplinkSchema, up)), { qos: 1 });
      };
      const receipts = () => dev.received.filter((d) => d.body.case === "receipt").flatMap((d) => (d.body.case === "receipt" ? d.body.value.messageIds : []));

      // Without receipt_requested: stored, no receipt.
      await publish("m-plain", 1, false);
      await eventually(async () => (await storedValues("rc-raw", "level")).length === 1, 5000, "the plain sample stored");

      // The writer holds samples: the broker has the message (PUBACK), Tether has no receipt for it.
      s.app.telemetryWriter.pause();
      await publish("m-held", 2, true);
      await new Promise((r) => setTimeout(r, 600));
      expect(receipts()).toEqual([]);
      expect(await storedValues("rc-raw", "level")).toEqual([1]);

      // Writes resume: the receipt follows the commit, so the sample is there when it arrives.
      s.app.telemetryWriter.resume();
      await eventually(async () => receipts().includes("m-held"), 5000, "the receipt for m-held");
      expect(await storedValues("rc-raw", "level")).toEqual([1, 2]);

      // A resend (same message, same sample) is receipted again and stored once.
      await publish("m-held", 2, true);
      await eventually(async () => receipts().filter((id) => id === "m-held").length === 2, 5000, "a second receipt for m-held");
      expect(await storedValues("rc-raw", "level")).toEqual([1, 2]);
      expect(receipts()).not.toContain("m-plain");
    } finally {
      s.app.telemetryWriter.resume();
      await dev.close();
    }
  });

  it("the SDK resends what a restart of Tether and its broker left unreceipted, and each sample is stored once", async () => {
    await sensor("rc-sdk");
    const { device } = await coffeeSim(s, "rc-sdk");
    try {
      // Received and stored, but the writer is held so no receipt can go out before the stop.
      s.app.telemetryWriter.pause();
      const before = Array.from({ length: 5 }, (_, i) => device.sendTelemetry([{ metric: "flow", value: i, time: at(i * 1000) }]));
      await eventually(async () => s.app.counters.get("tether_telemetry_samples_received_total") >= 5 || undefined, 5000, "the first samples received");
      expect(device.telemetryBacklog().pending).toBe(5);

      await s.app.stop(); // the embedded broker goes down too: the device is cut off
      // Sent while nobody listens: the SDK keeps them.
      const during = Array.from({ length: 5 }, (_, i) => device.sendTelemetry([{ metric: "flow", value: 5 + i, time: at((5 + i) * 1000) }]));
      expect(device.telemetryBacklog().pending).toBe(10);
      await s.restart();

      await Promise.all([...before, ...during]);
      expect(device.telemetryBacklog()).toMatchObject({ pending: 0 });
      expect(device.telemetryBacklog().resent).toBeGreaterThanOrEqual(5);
      expect(await storedValues("rc-sdk", "flow")).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    } finally {
      s.app.telemetryWriter.resume();
      await device.close();
    }
  });
});
