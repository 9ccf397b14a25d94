import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { Task_State as State } from "../../gen/tether/v1/task_pb.js";
import { TaskService } from "../../gen/tether/v1/task_service_pb.js";
import { TelemetryService } from "../../gen/tether/v1/telemetry_service_pb.js";
import { buildCDevice, ensureCToolchain } from "../helpers/c-toolchain.js";
import { deviceCredentials, eventually } from "../helpers/devices.js";
import { connectClient, startTestStack, type TestStack } from "../helpers/stack.js";

/*
 * The firmware author's view: a C device written from proto/tether/device/v1/ and its
 * device.options alone (tests/c-device/, nanopb + Paho MQTT C, static memory), built here and run
 * against Tether over MQTT with TLS and its X.509 certificate from Tether's CA.
 */
const unavailable = await ensureCToolchain();
if (unavailable) console.warn(`c-device test skipped: ${unavailable}`);

describe.skipIf(unavailable !== undefined)("the C reference device (nanopb + Paho MQTT C)", () => {
  let s: TestStack;
  let work: string;
  let binary: string;
  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), "tether-c-device-"));
    [s, binary] = await Promise.all([startTestStack(), buildCDevice(path.join(work, "build"))]);
  }, 300_000);
  afterAll(async () => {
    await s?.cleanup();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("connects with its certificate, says Hello, applies its desired state, runs a task to SUCCEEDED and gets a receipt for its telemetry", async () => {
    const id = "c-led";
    const devices = connectClient(s, DeviceService, "connect");
    const tasks = connectClient(s, TaskService, "connect");
    await devices.createDevice({ deviceId: id, device: { kind: { case: "led", value: {} } } });
    await devices.updateDevice({
      device: { name: `devices/${id}`, kind: { case: "led", value: { desired: { brightness: 30 } } } },
      updateMask: { paths: ["led.desired.brightness"] },
    });
    // Queued while the device is away: after its Hello it must get the desired state first.
    const task = await tasks.createTask({
      parent: `devices/${id}`,
      task: { command: { kind: { case: "led", value: { action: { case: "setBrightness", value: 70 } } } } },
    });

    const c = await deviceCredentials(s, id);
    const files = { ca: path.join(work, "ca.crt"), cert: path.join(work, `${id}.crt`), key: path.join(work, `${id}.key`) };
    await Promise.all([writeFile(files.ca, c.ca), writeFile(files.cert, c.cert, { mode: 0o600 }), writeFile(files.key, c.key, { mode: 0o600 })]);
    const url = s.mqttUrl.replace(/^mqtts:/, "ssl:");

    const child = spawn(binary, [url, id, files.ca, files.cert, files.key, "1", "90"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (b: Buffer) => (out += b.toString()));
    child.stderr.on("data", (b: Buffer) => (err += b.toString()));
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    expect({ code, err }, out).toEqual({ code: 0, err: "" });

    const lines = out.trim().split("\n");
    expect(lines[0]).toBe("connected");
    // The contract's order: desired state before the task, and the device decoded everything.
    expect(lines.findIndex((l) => l.startsWith("desired version="))).toBeLessThan(lines.findIndex((l) => l.startsWith("task ")));
    expect(lines).toContain("desired version=1 brightness=30");
    expect(lines.some((l) => /^task [0-9a-f-]{36} succeeded brightness=70$/.test(l))).toBe(true);
    expect(lines.at(-1)).toMatch(/^done downlinks=\d+ decode_errors=0$/);

    const done = await tasks.getTask({ name: task.name });
    expect(done.state).toBe(State.SUCCEEDED);
    expect(done.result?.kind.case === "led" && done.result.kind.value.state?.brightness).toBe(70);
    // The receipt came after the samples were stored: they are there now.
    const points = await connectClient(s, TelemetryService, "grpc").queryTelemetry({
      parent: `devices/${id}`,
      metrics: ["c_device_temperature"],
      startTime: timestampFromDate(new Date(Date.now() - 3_600_000)),
      endTime: timestampFromDate(new Date(Date.now() + 60_000)),
    });
    expect(points.points.map((p) => p.value)).toEqual([21.5, 21.75, 22]);
    const reported = await eventually(
      async () => {
        const d = await devices.getDevice({ name: `devices/${id}` });
        return d.kind.case === "led" && d.kind.value.reported?.brightness === 70 && d;
      },
      5000,
      "the reported brightness",
    );
    expect(reported).toBeTruthy();
  }, 180_000);
});
