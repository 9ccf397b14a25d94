import { Code, type Client } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeviceService, type WatchDevicesResponse, WatchDevicesResponse_Type as Type } from "../../gen/tether/v1/device_service_pb.js";
import { Grant_Role, ShareService } from "../../gen/tether/v1/share_service_pb.js";
import { PRESENCE_OFFLINE, PRESENCE_ONLINE, presenceTopic } from "../../src/protocol/topics.js";
import { bearerClient, userToken } from "../helpers/auth.js";
import { eventually, rawDevice } from "../helpers/devices.js";
import { connectClient, startTestStack, type TestStack } from "../helpers/stack.js";

let s: TestStack;
const tokens: Record<string, string> = {};
beforeAll(async () => {
  s = await startTestStack();
  for (const u of ["wendy", "stan"]) tokens[u] = await userToken(s, u);
  await as("wendy", DeviceService).createDevice({ deviceId: "wendy-led", device: { labels: { room: "kitchen" }, kind: { case: "led", value: {} } } });
  await as("stan", DeviceService).createDevice({ deviceId: "stan-led", device: { kind: { case: "led", value: {} } } });
}, 60_000);
afterAll(async () => {
  await s?.cleanup();
});

function as<S extends Parameters<typeof bearerClient>[1]>(user: string, service: S) {
  return bearerClient(s, service, tokens[user]!);
}

/** Collects a WatchDevices stream as `type name` strings (plus the raw messages). */
function watch(client: Client<typeof DeviceService>, filter = "") {
  const ctrl = new AbortController();
  const seen: WatchDevicesResponse[] = [];
  const done = (async () => {
    try {
      for await (const r of client.watchDevices({ filter }, { signal: ctrl.signal })) seen.push(r);
    } catch (err) {
      if (!ctrl.signal.aborted) throw err;
    }
  })();
  const events = () => seen.map((r) => `${Type[r.type]} ${r.device?.name.replace("devices/", "") ?? ""}`.trim());
  return {
    seen,
    events,
    /** Waits for an event `TYPE id`; returns its message. */
    async next(event: string, what = event) {
      await eventually(async () => events().includes(event), 15_000, what);
      return seen[events().lastIndexOf(event)]!;
    },
    stop: async () => (ctrl.abort(), await done),
  };
}

describe("DeviceService.WatchDevices", () => {
  it("sends the caller's devices, a marker, then create, update, presence and delete as they happen", async () => {
    const w = watch(as("wendy", DeviceService));
    try {
      await w.next("INITIAL_COMPLETE");
      expect(w.events()).toEqual(["INITIAL wendy-led", "INITIAL_COMPLETE"]);

      await as("wendy", DeviceService).createDevice({ deviceId: "wendy-coffee", device: { kind: { case: "coffeeMachine", value: {} } } });
      expect((await w.next("CHANGED wendy-coffee")).device!.kind.case).toBe("coffeeMachine");

      await as("wendy", DeviceService).updateDevice({ device: { name: "devices/wendy-coffee", labels: { floor: "2" } }, updateMask: { paths: ["labels"] } });
      await eventually(async () => w.seen.some((r) => r.device?.name === "devices/wendy-coffee" && r.device.labels.floor === "2"), 15_000, "the relabel");

      await as("wendy", DeviceService).updateDevice({
        device: { name: "devices/wendy-led", kind: { case: "led", value: { desired: { brightness: 40 } } } },
        updateMask: { paths: ["led.desired.brightness"] },
      });
      await eventually(
        async () => w.seen.some((r) => r.device?.kind.case === "led" && r.device.kind.value.desired?.brightness === 40),
        15_000,
        "the desired change",
      );

      // Presence: a device announcing itself over MQTT, then leaving.
      const dev = await rawDevice(s, "wendy-led");
      try {
        await dev.publishRaw(presenceTopic("wendy-led"), PRESENCE_ONLINE);
        await eventually(
          async () => w.seen.some((r) => r.type === Type.CHANGED && r.device?.name === "devices/wendy-led" && r.device.connectivity?.online),
          15_000,
          "online",
        );
        await dev.publishRaw(presenceTopic("wendy-led"), PRESENCE_OFFLINE);
      } finally {
        await dev.close();
      }
      await eventually(
        async () => w.seen.at(-1)?.device?.name === "devices/wendy-led" && w.seen.at(-1)?.device?.connectivity?.online === false,
        15_000,
        "offline",
      );

      await as("wendy", DeviceService).deleteDevice({ name: "devices/wendy-coffee" });
      const del = await w.next("DELETED wendy-coffee");
      expect(del.device!.deleteTime).toBeDefined();
    } finally {
      await w.stop();
    }
  });

  it("follows the firmware version a device reports in its Hello over MQTT, and announces it", async () => {
    await as("stan", DeviceService).updateDevice({
      device: { name: "devices/stan-led", firmwareVersion: "1.0.0" },
      updateMask: { paths: ["firmware_version"] },
    });
    const w = watch(as("stan", DeviceService));
    const dev = await rawDevice(s, "stan-led");
    try {
      await w.next("INITIAL_COMPLETE");
      await dev.send({ case: "hello", value: { firmwareVersion: "1.2.3", wantPendingTasks: true } });
      await eventually(
        async () => w.seen.some((r) => r.device?.name === "devices/stan-led" && r.device.firmwareVersion === "1.2.3"),
        15_000,
        "the reported firmware on the watch",
      );
      expect((await as("stan", DeviceService).getDevice({ name: "devices/stan-led" })).firmwareVersion).toBe("1.2.3");
      // Hello said online; leave offline as the first test does, before the next test watches stan's devices.
      await dev.publishRaw(presenceTopic("stan-led"), PRESENCE_OFFLINE);
    } finally {
      await dev.close();
      await w.stop();
    }
    await eventually(
      async () => (await as("stan", DeviceService).getDevice({ name: "devices/stan-led" })).connectivity?.online === false,
      15_000,
      "stan-led offline",
    );
  });

  it("a stranger's watch never carries devices they cannot see; a share applies at once", async () => {
    const w = watch(as("stan", DeviceService));
    try {
      await w.next("INITIAL_COMPLETE");
      expect(w.events()).toEqual(["INITIAL stan-led", "INITIAL_COMPLETE"]);
      await as("wendy", DeviceService).createDevice({ deviceId: "wendy-hidden", device: { kind: { case: "led", value: {} } } });
      await as("wendy", DeviceService).updateDevice({
        device: { name: "devices/wendy-led", labels: { room: "kitchen", x: "1" } },
        updateMask: { paths: ["labels"] },
      });
      await as("wendy", DeviceService).deleteDevice({ name: "devices/wendy-hidden" });
      // A change of stan's own device after all of those: once it arrives, the others would have too.
      await as("stan", DeviceService).updateDevice({ device: { name: "devices/stan-led", labels: { mark: "1" } }, updateMask: { paths: ["labels"] } });
      await w.next("CHANGED stan-led", "stan's marker");
      expect(w.events().filter((e) => e.includes("wendy"))).toEqual([]);

      // Shared: changes of wendy-led flow to stan from now on.
      await as("wendy", ShareService).createGrant({
        grant: { principal: "users/stan", target: { case: "device", value: "devices/wendy-led" }, role: Grant_Role.VIEWER },
      });
      await as("wendy", DeviceService).updateDevice({
        device: { name: "devices/wendy-led", labels: { room: "kitchen", x: "2" } },
        updateMask: { paths: ["labels"] },
      });
      await w.next("CHANGED wendy-led", "the shared device's change");
    } finally {
      await w.stop();
    }
  });

  it("applies the filter, and says REMOVED when a sent device stops matching", async () => {
    const admin = connectClient(s, DeviceService, "grpc");
    await admin.createDevice({ deviceId: "f-kitchen", device: { labels: { room: "kitchen" }, kind: { case: "led", value: {} } } });
    const w = watch(admin, 'labels.room = "kitchen" AND kind = "led"');
    try {
      await w.next("INITIAL_COMPLETE");
      expect(w.events()).toEqual(["INITIAL f-kitchen", "INITIAL wendy-led", "INITIAL_COMPLETE"]);
      await admin.createDevice({ deviceId: "f-office", device: { labels: { room: "office" }, kind: { case: "led", value: {} } } });
      await admin.createDevice({ deviceId: "f-kitchen-coffee", device: { labels: { room: "kitchen" }, kind: { case: "coffeeMachine", value: {} } } });
      await admin.createDevice({ deviceId: "f-kitchen-2", device: { labels: { room: "kitchen" }, kind: { case: "led", value: {} } } });
      await w.next("CHANGED f-kitchen-2");
      // Moved out of the kitchen: REMOVED once, then nothing more about it.
      await admin.updateDevice({ device: { name: "devices/f-kitchen", labels: { room: "office" } }, updateMask: { paths: ["labels"] } });
      await w.next("REMOVED f-kitchen");
      await admin.updateDevice({ device: { name: "devices/f-kitchen", labels: { room: "hall" } }, updateMask: { paths: ["labels"] } });
      await admin.updateDevice({ device: { name: "devices/f-kitchen-2", labels: { room: "kitchen", mark: "1" } }, updateMask: { paths: ["labels"] } });
      await eventually(async () => w.events().filter((e) => e === "CHANGED f-kitchen-2").length === 2, 15_000, "the marker");
      expect(w.events().filter((e) => /f-office|f-kitchen-coffee/.test(e))).toEqual([]);
      expect(w.events().filter((e) => e.endsWith(" f-kitchen"))).toEqual(["INITIAL f-kitchen", "REMOVED f-kitchen"]);
    } finally {
      await w.stop();
    }
  });

  it('watches one device with name = "devices/…" (as the console\'s device page does); ListDevices takes the same term', async () => {
    const admin = connectClient(s, DeviceService, "grpc");
    expect((await admin.listDevices({ filter: 'name = "devices/stan-led"' })).devices.map((d) => d.name)).toEqual(["devices/stan-led"]);
    const w = watch(admin, 'name = "devices/stan-led"');
    try {
      await w.next("INITIAL_COMPLETE");
      expect(w.events()).toEqual(["INITIAL stan-led", "INITIAL_COMPLETE"]);
      await admin.updateDevice({ device: { name: "devices/wendy-led", labels: { y: "1" } }, updateMask: { paths: ["labels"] } });
      await admin.updateDevice({ device: { name: "devices/stan-led", labels: { y: "1" } }, updateMask: { paths: ["labels"] } });
      await w.next("CHANGED stan-led");
      expect(w.events().filter((e) => !e.endsWith("stan-led") && e !== "INITIAL_COMPLETE")).toEqual([]);
    } finally {
      await w.stop();
    }
    await expect(admin.listDevices({ filter: 'name = "stan-led"' })).rejects.toMatchObject({ code: Code.InvalidArgument });
  });

  it("refuses a filter it cannot parse with INVALID_ARGUMENT", async () => {
    const it = connectClient(s, DeviceService, "grpc").watchDevices({ filter: "colour = red" });
    await expect(
      (async () => {
        for await (const _ of it) void _;
      })(),
    ).rejects.toMatchObject({ code: Code.InvalidArgument });
  });
});
