import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import type { Downlink } from "../../gen/tether/device/v1/downlink_pb.js";
import { DeviceGatewayService } from "../../gen/tether/device/v1/gateway_service_pb.js";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { Task_State as State } from "../../gen/tether/v1/task_pb.js";
import { TaskService } from "../../gen/tether/v1/task_service_pb.js";
import { presenceTopic, PRESENCE_OFFLINE, PRESENCE_ONLINE } from "../../src/protocol/topics.js";
import { devicePem } from "../helpers/http-device.js";
import { eventually, rawDevice } from "../helpers/devices.js";
import { connectClient, startTestStack, type TestStack } from "../helpers/stack.js";

let s: TestStack;
beforeAll(async () => {
  s = await startTestStack();
});
afterAll(async () => {
  await s?.cleanup();
});

const devices = () => connectClient(s, DeviceService, "connect");
const tasks = () => connectClient(s, TaskService, "connect");
const led = (id: string) => devices().createDevice({ deviceId: id, device: { kind: { case: "led", value: {} } } });
const brightness = (n: number) => ({ command: { kind: { case: "led" as const, value: { action: { case: "setBrightness" as const, value: n } } } } });
const setDesired = (id: string, b: number) =>
  devices().updateDevice({
    device: { name: `devices/${id}`, kind: { case: "led", value: { desired: { brightness: b } } } },
    updateMask: { paths: ["led.desired.brightness"] },
  });

/** What a downlink sequence says, compactly: `desired:3`, `task:7`, ... (task = its sequence). */
const summary = (ds: Downlink[]) =>
  ds.map((d) =>
    d.body.case === "desiredState" ? `desired:${d.body.value.version}` : d.body.case === "task" ? `task:${d.body.value.sequence}` : (d.body.case ?? "empty"),
  );

describe("the order of downlink after a (re)connect", () => {
  for (const withPresence of [true, false]) {
    it(`desired state first, then tasks in sequence order (device ${withPresence ? "publishes presence, then Hello" : "sends only Hello"})`, async () => {
      const id = withPresence ? "order-presence" : "order-hello";
      await led(id);
      await setDesired(id, 10);
      // First session: one task is sent but never acknowledged; then the device goes away.
      const first = await rawDevice(s, id);
      await first.send({ case: "hello", value: { wantPendingTasks: true } });
      const t1 = await tasks().createTask({ parent: `devices/${id}`, task: brightness(1) });
      await eventually(async () => first.received.some((d) => d.body.case === "task"), 5000, "the first task");
      await first.publishRaw(presenceTopic(id), PRESENCE_OFFLINE);
      await eventually(async () => !(await devices().getDevice({ name: `devices/${id}` })).connectivity?.online, 5000, "the device offline");
      await first.close();

      // While it is away: two more tasks queue and the owner changes the desired state.
      const t2 = await tasks().createTask({ parent: `devices/${id}`, task: brightness(2) });
      const t3 = await tasks().createTask({ parent: `devices/${id}`, task: brightness(3) });
      await setDesired(id, 20);
      expect((await tasks().getTask({ name: t2.name })).state).toBe(State.QUEUED);

      const again = await rawDevice(s, id);
      try {
        if (withPresence) await again.publishRaw(presenceTopic(id), PRESENCE_ONLINE);
        await again.send({ case: "hello", value: { firmwareVersion: "1.0.0", wantPendingTasks: true } });
        await eventually(
          async () => new Set(again.received.filter((d) => d.body.case === "task").map((d) => (d.body.case === "task" ? d.body.value.taskId : ""))).size === 3,
          8000,
          "all three tasks",
        );
        const seen = summary(again.received);
        const firstTask = seen.findIndex((x) => x.startsWith("task:"));
        const firstDesired = seen.findIndex((x) => x.startsWith("desired:"));
        expect(firstDesired, seen.join(" ")).toBeGreaterThanOrEqual(0);
        expect(firstDesired, seen.join(" ")).toBeLessThan(firstTask);
        // Tasks in their sequence order, first occurrences (a redelivery may repeat one later).
        const order = [...new Set(seen.filter((x) => x.startsWith("task:")))];
        const sequences = [t1, t2, t3].map((t) => `task:${t.sequence}`);
        expect(order, seen.join(" ")).toEqual(sequences);
        // The desired state sent is the newest.
        const desired = again.received.find((d) => d.body.case === "desiredState");
        expect(desired?.body.case === "desiredState" && desired.body.value.kind.case === "led" && desired.body.value.kind.value.brightness).toBe(20);
      } finally {
        await again.close();
      }
    });
  }
});

describe("uplink over the contract's bounds", () => {
  it("over MQTT: refused whole (counted as over_bound, nothing applied), and receipted since a resend cannot help", async () => {
    const id = "bounds-mqtt";
    await led(id);
    const dev = await rawDevice(s, id);
    try {
      await dev.send({ case: "hello", value: { wantPendingTasks: true } });
      const t = await tasks().createTask({ parent: `devices/${id}`, task: brightness(5) });
      const sent = await eventually(async () => dev.received.find((d) => d.body.case === "task"), 5000, "the task");
      const taskId = sent.body.case === "task" ? sent.body.value.taskId : "";
      const before = s.app.counters.get("tether_uplink_dropped_total", { reason: "over_bound" });
      // 86 × "€" is 258 bytes: under 256 characters, over the 256-byte bound.
      const { create, toBinary } = await import("@bufbuild/protobuf");
      const { UplinkSchema } = await import("../../gen/tether/device/v1/uplink_pb.js");
      const up = create(UplinkSchema, {
        messageId: "over-1",
        receiptRequested: true,
        maxReceiptIds: 4,
        body: { case: "progress", value: { taskId, percent: 50, message: "€".repeat(86) } },
      });
      await dev.client.publishAsync(`tether/v1/devices/${id}/up`, Buffer.from(toBinary(UplinkSchema, up)), { qos: 1 });
      await eventually(async () => dev.received.some((d) => d.body.case === "receipt" && d.body.value.messageIds.includes("over-1")), 5000, "the receipt");
      expect(s.app.counters.get("tether_uplink_dropped_total", { reason: "over_bound" })).toBe(before + 1);
      const got = await tasks().getTask({ name: t.name });
      expect(got.state).toBe(State.SENT); // the progress was not applied
      expect(got.progress).toBeUndefined();
    } finally {
      await dev.close();
    }
  });

  it("over HTTP: INVALID_ARGUMENT naming the field and the bound, nothing taken", async () => {
    const id = "bounds-http";
    await led(id);
    const gw = connectClient(s, DeviceGatewayService, "connect", await devicePem(s, id));
    const err = await gw
      .publishUplink({
        uplinks: [
          { body: { case: "telemetry", value: { samples: [{ metric: "ok", value: 1 }] } } },
          { messageId: "m".repeat(37), body: { case: "telemetry", value: { samples: [{ metric: "t", value: 1, tags: { zone: "ü".repeat(129) } }] } } },
        ],
      })
      .then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
    expect(err?.code).toBe(Code.InvalidArgument);
    const violations = err?.findDetails(BadRequestSchema)[0]?.fieldViolations.map((v) => `${v.field}: ${v.description}`);
    expect(violations).toEqual([
      "uplinks[1].message_id: must be at most 36 bytes (UTF-8), got 37",
      'uplinks[1].telemetry.samples[0].tags["zone"]: must be at most 256 bytes (UTF-8), got 258',
    ]);
  });
});
