import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus as Serving } from "../../gen/grpc/health/v1/health_pb.js";
import { CupSize, Recipe } from "../../gen/tether/v1/coffee_machine_pb.js";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { Task_State as State } from "../../gen/tether/v1/task_pb.js";
import { CreateTaskRequest_WaitFor as WaitFor, TaskService } from "../../gen/tether/v1/task_service_pb.js";
import { TelemetryService } from "../../gen/tether/v1/telemetry_service_pb.js";
import { HEALTH } from "../../src/ops/dependencies.js";
import { ensureDevPki } from "../../src/pki/dev-pki.js";
import { coffeeSim, eventually, ledSim } from "../helpers/devices.js";
import { type RunningMosquitto, startMosquitto, writeCrl } from "../helpers/mosquitto.js";
import { freshDatabase, TEST_POSTGRES_URL } from "../helpers/postgres.js";
import { metricValue } from "../helpers/replica.js";
import { connectClient, startTestStack, type TestStack } from "../helpers/stack.js";
import { startTcpProxy, type TcpProxy } from "../helpers/tcp-proxy.js";

let dir: string;
let broker: RunningMosquitto;
let db: Awaited<ReturnType<typeof freshDatabase>>;
let proxy: TcpProxy;
let s: TestStack;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "tether-ext-"));
  const certsDir = path.join(dir, "certs");
  await ensureDevPki(certsDir);
  await writeCrl(certsDir, []);
  broker = await startMosquitto({ certsDir });
  db = await freshDatabase("tether_ext");
  // Tether reaches PostgreSQL through a proxy the test can cut, leaving the shared server alone.
  const pg = new URL(TEST_POSTGRES_URL);
  proxy = await startTcpProxy({ host: pg.hostname, port: Number(pg.port || 5432) });
  const url = new URL(db.url);
  url.port = String(proxy.port);
  s = await startTestStack({
    DATABASE_URL: url.toString(),
    MQTT_URL: broker.url,
    TETHER_CERTS_DIR: certsDir,
    TETHER_HEALTH_PROBE_MS: "200",
    TETHER_TASK_SWEEP_MS: "200",
  });
});
afterAll(async () => {
  await s?.cleanup();
  await proxy?.close();
  await broker?.stop();
  await db?.drop();
  await rm(dir, { recursive: true, force: true });
});

const devices = () => connectClient(s, DeviceService, "grpc");
const tasks = () => connectClient(s, TaskService, "grpc");
const telemetry = () => connectClient(s, TelemetryService, "grpc");
const health = () => connectClient(s, Health, "grpc");
const scrape = async () => (await fetch(`${s.opsUrl}/metrics`)).text();
const brew = {
  command: { kind: { case: "coffeeMachine" as const, value: { action: { case: "brew" as const, value: { recipe: Recipe.LUNGO, size: CupSize.MEDIUM } } } } },
};

describe("Tether on PostgreSQL + Mosquitto (MQTT_URL)", () => {
  it("runs tasks, desired state and telemetry through the external broker", async () => {
    expect(s.app.mqttPort).toBe(0); // no embedded broker
    await devices().createDevice({ deviceId: "ext-coffee", device: { kind: { case: "coffeeMachine", value: {} } } });
    await devices().createDevice({ deviceId: "ext-led", device: { kind: { case: "led", value: {} } } });
    const coffee = await coffeeSim(s, "ext-coffee", { brewMs: 200 });
    const led = await ledSim(s, "ext-led");
    try {
      const t = await tasks().createTask({ parent: "devices/ext-coffee", task: brew, waitFor: WaitFor.COMPLETED, waitTimeout: { seconds: 20n } });
      expect(t.state).toBe(State.SUCCEEDED);
      expect(t.result?.kind.case).toBe("coffeeMachine");
      expect(coffee.device.executions.get(t.name.split("/")[3]!)).toBe(1);

      await devices().updateDevice({
        device: { name: "devices/ext-led", kind: { case: "led", value: { desired: { brightness: 35, power: true } } } },
        updateMask: { paths: ["led.desired"] },
      });
      await eventually(
        async () => {
          const d = await devices().getDevice({ name: "devices/ext-led" });
          return d.kind.case === "led" && d.kind.value.reported?.brightness === 35 && d.connectivity?.online;
        },
        15_000,
        "reported state through Mosquitto",
      );

      const when = new Date(Date.now() - 1000);
      await coffee.device.sendTelemetry([{ metric: "boiler_temperature_celsius", value: 93.5, time: timestampFromDate(when) }]);
      await eventually(
        async () =>
          (await telemetry().getLatestTelemetry({ parent: "devices/ext-coffee" })).samples.find(
            (x) => x.metric === "boiler_temperature_celsius" && x.value === 93.5,
          ),
        15_000,
        "telemetry sample",
      );
    } finally {
      await coffee.device.close();
      await led.device.close();
    }
  });

  it("exports the named series on /metrics and returns request ids", async () => {
    let echoed: string | null = null;
    await devices().getDevice(
      { name: "devices/ext-coffee" },
      { headers: { "x-request-id": "test-req-42" }, onHeader: (h) => (echoed = h.get("x-request-id")) },
    );
    expect(echoed).toBe("test-req-42");
    let generated: string | null = null;
    await devices().getDevice({ name: "devices/ext-coffee" }, { onHeader: (h) => (generated = h.get("x-request-id")) });
    expect(generated).toMatch(/^[0-9a-f-]{36}$/);

    const text = await scrape();
    expect(
      metricValue(text, "tether_rpc_duration_seconds_count", { service: "tether.v1.TaskService", method: "CreateTask", code: "ok" }),
    ).toBeGreaterThanOrEqual(1);
    expect(metricValue(text, "tether_rpc_duration_seconds_count", { method: "GetDevice", code: "ok" })).toBeGreaterThanOrEqual(2);
    expect(metricValue(text, "tether_rpc_duration_seconds_sum", { method: "CreateTask" })).toBeGreaterThan(0);
    expect(metricValue(text, "tether_tasks", { state: "SUCCEEDED" })).toBeGreaterThanOrEqual(1);
    expect(metricValue(text, "tether_devices_online")).toBeGreaterThanOrEqual(0);
    expect(metricValue(text, "tether_queue_depth", { queue: "uplink" })).toBeGreaterThanOrEqual(0);
    expect(metricValue(text, "tether_queue_depth", { queue: "telemetry" })).toBeGreaterThanOrEqual(0);
    expect(metricValue(text, "tether_dependency_up", { dependency: HEALTH.database })).toBe(1);
    expect(metricValue(text, "tether_dependency_up", { dependency: HEALTH.broker })).toBe(1);
    expect(metricValue(text, "tether_uplink_received_total", { kind: "result" })).toBeGreaterThanOrEqual(1);
    expect(metricValue(text, "tether_telemetry_samples_stored_total")).toBeGreaterThanOrEqual(1);
    expect(metricValue(text, "tether_process_resident_memory_bytes")).toBeGreaterThan(1e6);
    expect(text).toMatch(/# HELP tether_uplink_dropped_total|# HELP tether_uplink_received_total/);
    expect((await fetch(`${s.opsUrl}/healthz`)).status).toBe(200);
    expect((await fetch(`${s.opsUrl}/readyz`)).status).toBe(200);
  });

  it("reports the database NOT_SERVING while it is unreachable, and loses nothing across the outage", async () => {
    await devices().createDevice({ deviceId: "cut-coffee", device: { kind: { case: "coffeeMachine", value: {} } } });
    const coffee = await coffeeSim(s, "cut-coffee", { brewMs: 1500 });
    try {
      // A brew is running on the device when the database goes away; its result arrives during the outage.
      const t = await tasks().createTask({ parent: "devices/cut-coffee", task: { ...brew, executionTimeout: { seconds: 3n }, maxAttempts: 5 } });
      const taskId = t.name.split("/")[3]!;
      await eventually(async () => coffee.device.executions.has(taskId), 10_000, "the brew to start");
      proxy.cut();
      await eventually(async () => (await health().check({ service: HEALTH.database })).status === Serving.NOT_SERVING, 10_000, "database NOT_SERVING");
      expect((await health().check({ service: "" })).status).toBe(Serving.NOT_SERVING);
      expect((await health().check({ service: HEALTH.broker })).status).toBe(Serving.SERVING);
      const ready = await fetch(`${s.opsUrl}/readyz`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({ ready: false, dependencies: { [HEALTH.database]: false, [HEALTH.broker]: true } });
      expect((await fetch(`${s.opsUrl}/healthz`)).status).toBe(200); // alive: do not restart it for this
      expect(metricValue(await scrape(), "tether_dependency_up", { dependency: HEALTH.database })).toBe(0);
      // Telemetry keeps arriving meanwhile; its receipts wait for the database.
      const base = Date.now() - 60_000;
      const probes = Array.from({ length: 20 }, (_, i) =>
        coffee.device.sendTelemetry([{ metric: "outage_probe", value: i, time: timestampFromDate(new Date(base + i * 1000)) }]),
      );
      await eventually(async () => coffee.device.telemetryBacklog().pending === 20, 5000, "20 samples sent, none receipted");
      await eventually(async () => coffee.device.executions.get(taskId) === 1 && !coffee.sim.brew, 10_000, "the brew to finish during the outage");

      proxy.restore();
      await eventually(async () => (await health().check({ service: "" })).status === Serving.SERVING, 15_000, "SERVING again");
      expect((await fetch(`${s.opsUrl}/readyz`)).status).toBe(200);
      // The result sent during the outage is recovered (resend → the device replays its cached result), once.
      await eventually(async () => (await tasks().getTask({ name: t.name })).state === State.SUCCEEDED, 30_000, "the task to succeed after the outage");
      expect(coffee.device.executions.get(taskId)).toBe(1);
      // Every sample sent during the outage is stored, and the device has its receipts.
      await Promise.all(probes);
      const q = async () =>
        (
          await telemetry().queryTelemetry({
            parent: "devices/cut-coffee",
            metrics: ["outage_probe"],
            startTime: timestampFromDate(new Date(base - 1000)),
            endTime: timestampFromDate(new Date(base + 60_000)),
            pageSize: 100,
          })
        ).points;
      const points = await eventually(async () => ((await q()).length === 20 ? q() : undefined), 20_000, "20 outage samples stored");
      expect(points.map((p) => p.value)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    } finally {
      proxy.restore();
      await coffee.device.close();
    }
  });
});
