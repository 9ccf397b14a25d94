import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CupSize, Recipe } from "../../gen/tether/v1/coffee_machine_pb.js";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { Task_State as State } from "../../gen/tether/v1/task_pb.js";
import { TaskService } from "../../gen/tether/v1/task_service_pb.js";
import type { TetherDevice } from "../../src/device/tether-device.js";
import { coffeeSim, eventually, ledSim, rawDevice } from "../helpers/devices.js";
import { connectClient, freePort, startTestStack, type TestStack } from "../helpers/stack.js";

let s: TestStack;
beforeAll(async () => {
  // Fixed ports: devices reconnect to the same address after the restart.
  s = await startTestStack({
    TETHER_PORT: String(await freePort()),
    TETHER_MQTT_PORT: String(await freePort()),
    TETHER_TASK_SWEEP_MS: "100",
    TETHER_TASK_ACK_TIMEOUT_MS: "1000",
  });
});
afterAll(async () => {
  await s?.cleanup();
});

const devices = () => connectClient(s, DeviceService, "connect");
const tasks = () => connectClient(s, TaskService, "connect");
const brew = {
  command: { kind: { case: "coffeeMachine" as const, value: { action: { case: "brew" as const, value: { recipe: Recipe.ESPRESSO, size: CupSize.SMALL } } } } },
};
const stateOf = async (name: string) => (await tasks().getTask({ name })).state;
const idOf = (name: string) => name.split("/")[3]!;

describe("restart with tasks in flight", () => {
  it("completes QUEUED, SENT and RUNNING tasks after a restart, executing none twice", async () => {
    for (const id of ["rs-queued", "rs-sent", "rs-running"]) {
      await devices().createDevice({ deviceId: id, device: { kind: { case: "coffeeMachine", value: {} } } });
    }
    // QUEUED: its device is offline throughout.
    const queued = await tasks().createTask({ parent: "devices/rs-queued", task: brew });
    // SENT: a device that takes the task but never answers, then goes away.
    const silent = await rawDevice(s, "rs-sent");
    const sent = await tasks().createTask({ parent: "devices/rs-sent", task: brew });
    await silent.send({ case: "hello", value: { wantPendingTasks: true } });
    await silent.waitFor(1);
    await eventually(async () => (await stateOf(sent.name)) === State.SENT, 5000, "SENT");
    await silent.close();
    // RUNNING: a slow brew on a device that stays connected through the restart.
    const { device: runner } = await coffeeSim(s, "rs-running", { brewMs: 2500 });
    const running = await tasks().createTask({ parent: "devices/rs-running", task: brew });
    await eventually(async () => (await stateOf(running.name)) === State.RUNNING, 5000, "RUNNING");

    await s.app.stop(); // the embedded broker goes down too: every device is cut off
    await s.restart();

    const devicesAfter: TetherDevice[] = [runner];
    try {
      // The silent device is replaced by a real one with the same identity; the queued one appears.
      devicesAfter.push((await coffeeSim(s, "rs-sent", { brewMs: 200 })).device);
      devicesAfter.push((await coffeeSim(s, "rs-queued", { brewMs: 200 })).device);
      for (const t of [queued, sent, running]) {
        await eventually(async () => (await stateOf(t.name)) === State.SUCCEEDED, 15_000, `${t.name} to succeed`);
      }
      const executions = devicesAfter.flatMap((d) => [...d.executions.values()]);
      expect(executions.every((n) => n === 1)).toBe(true);
      expect(runner.executions.get(idOf(running.name))).toBe(1);
    } finally {
      await Promise.all(devicesAfter.map((d) => d.close()));
    }
  });
});

describe("retries after an execution timeout", () => {
  it("retries a task whose result never comes, then gives up as TIMED_OUT", async () => {
    await devices().createDevice({ deviceId: "retry-led", device: { kind: { case: "led", value: {} } } });
    const dev = await rawDevice(s, "retry-led");
    try {
      const t = await tasks().createTask({
        parent: "devices/retry-led",
        task: { command: { kind: { case: "led", value: { action: { case: "setPower", value: true } } } }, executionTimeout: { seconds: 1n }, maxAttempts: 2 },
      });
      await dev.send({ case: "hello", value: { wantPendingTasks: true } });
      // Attempt 1: acknowledged, never finished.
      const [first] = await dev.waitFor(1);
      expect(first!.body.case === "task" && first!.body.value.attempt).toBe(1);
      await dev.send({ case: "ack", value: { taskId: idOf(t.name), attempt: 1 } });
      // Attempt 2 arrives after the timeout and a backoff, with the same task id.
      // Generous waits: on a loaded 2-core machine the sweep and the backoff can run late.
      // (Attempt 1 may arrive twice first: a device online before the task was created gets it at
      // once, and again with its Hello, which resends what it never acknowledged.)
      const second = await eventually(async () => dev.received.find((m) => m.body.case === "task" && m.body.value.attempt === 2), 30_000, "attempt 2");
      expect(second.body.case === "task" && second.body.value.taskId).toBe(idOf(t.name));
      await dev.send({ case: "ack", value: { taskId: idOf(t.name), attempt: 2 } });
      await eventually(async () => (await stateOf(t.name)) === State.TIMED_OUT, 30_000, "TIMED_OUT");
      const final = await tasks().getTask({ name: t.name });
      expect(final.attempt).toBe(2);
      expect(final.stateReason).toMatch(/no result within the execution timeout after 2 attempt/);
    } finally {
      await dev.close();
    }
  }, 90_000);
});

describe("desired and reported state", () => {
  it("sends a desired state change to the device and shows the state it reports", async () => {
    await devices().createDevice({ deviceId: "ds-led", device: { kind: { case: "led", value: {} } } });
    const { device, sim } = await ledSim(s, "ds-led");
    try {
      // Its Hello reports a firmware version, which changes the device (and its etag): read after it.
      await eventually(
        async () => {
          const x = await devices().getDevice({ name: "devices/ds-led" });
          return x.connectivity?.online && x.firmwareVersion !== "";
        },
        5000,
        "online, firmware reported",
      );
      const d = await devices().getDevice({ name: "devices/ds-led" });
      await devices().updateDevice({
        device: { name: d.name, etag: d.etag, kind: { case: "led", value: { desired: { color: { red: 10, green: 20, blue: 30 }, power: true } } } },
        updateMask: { paths: ["led.desired"] },
      });
      await eventually(async () => (sim.reported().kind?.value as { color?: { blue?: number } } | undefined)?.color?.blue === 30, 5000, "the LED to apply it");
      await eventually(
        async () => {
          const after = await devices().getDevice({ name: "devices/ds-led" });
          return after.kind.case === "led" && after.kind.value.reported?.color?.blue === 30 && after.kind.value.reported.power === true;
        },
        5000,
        "reported state in the registry",
      );
      // A stale etag is refused.
      await expect(devices().updateDevice({ device: { name: d.name, etag: d.etag, owner: "x" }, updateMask: { paths: ["owner"] } })).rejects.toMatchObject({
        code: Code.Aborted,
      });
    } finally {
      await device.close();
    }
  });

  it("ignores a stale reported state", async () => {
    await devices().createDevice({ deviceId: "stale-led", device: { kind: { case: "led", value: {} } } });
    const dev = await rawDevice(s, "stale-led");
    try {
      await dev.send({ case: "state", value: { version: 5n, kind: { case: "led", value: { brightness: 50 } } } });
      await dev.send({ case: "state", value: { version: 3n, kind: { case: "led", value: { brightness: 30 } } } });
      await eventually(async () => s.app.counters.get("tether_reported_state_stale_total") >= 1, 5000, "stale counted");
      const d = await devices().getDevice({ name: "devices/stale-led" });
      expect(d.kind.case === "led" && d.kind.value.reported?.brightness).toBe(50);
    } finally {
      await dev.close();
    }
  });
});
