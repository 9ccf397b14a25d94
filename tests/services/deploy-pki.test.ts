import { execFile } from "node:child_process";
import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { Task_State as State } from "../../gen/tether/v1/task_pb.js";
import { CreateTaskRequest_WaitFor as WaitFor, TaskService } from "../../gen/tether/v1/task_service_pb.js";
import { ledSim } from "../helpers/devices.js";
import { type RunningMosquitto, startMosquitto } from "../helpers/mosquitto.js";
import { connectClient, startTestStack, type TestStack } from "../helpers/stack.js";

const run = promisify(execFile);
const SCRIPT = path.resolve(import.meta.dirname, "../../deploy/pki/make-certs.sh");
let dir: string;
let certsDir: string;
let broker: RunningMosquitto;
let s: TestStack;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "tether-deploy-pki-"));
  certsDir = path.join(dir, "certs");
  await run("sh", [SCRIPT, certsDir]);
  broker = await startMosquitto({ certsDir, cert: "mosquitto.crt", key: "mosquitto.key" });
  s = await startTestStack({ MQTT_URL: `mqtts://localhost:${broker.port}`, TETHER_CERTS_DIR: certsDir });
});
afterAll(async () => {
  await s?.cleanup();
  await broker?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe("the PKI from deploy/pki/make-certs.sh", () => {
  it("is used as is by Tether and by Mosquitto (deploy/mosquitto), CRL included, for a task round trip", async () => {
    // Tether reuses the script's CA, server and admin certificates: it writes nothing.
    const before = (await readdir(certsDir)).sort();
    await connectClient(s, DeviceService, "grpc").createDevice({ deviceId: "pki-led", device: { kind: { case: "led", value: {} } } });
    const { device } = await ledSim(s, "pki-led");
    try {
      const t = await connectClient(s, TaskService, "grpc").createTask({
        parent: "devices/pki-led",
        task: { command: { kind: { case: "led", value: { action: { case: "setPower", value: true } } } } },
        waitFor: WaitFor.COMPLETED,
        waitTimeout: { seconds: 20n },
      });
      expect(t.state).toBe(State.SUCCEEDED);
    } finally {
      await device.close();
    }
    expect((await readdir(certsDir)).sort()).toEqual(before);
    expect(before).toEqual(expect.arrayContaining(["ca.crt", "ca.key", "server.crt", "admin.crt", "mosquitto.crt", "rabbitmq.crt", "postgres.crt", "crl.pem"]));
    expect((await stat(path.join(certsDir, "ca.key"))).mode & 0o077).toBe(0);
    // Running it again changes nothing.
    const { stdout } = await run("sh", [SCRIPT, certsDir]);
    expect(stdout).toMatch(/^PKI in /);
  });
});
