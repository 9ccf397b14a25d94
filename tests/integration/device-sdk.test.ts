import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import mqtt, { type MqttClient } from "mqtt";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { DownlinkSchema, TaskRequestSchema } from "../../gen/tether/device/v1/downlink_pb.js";
import { UplinkSchema, type Uplink } from "../../gen/tether/device/v1/uplink_pb.js";
import { CoffeeMachineStatus, Recipe } from "../../gen/tether/v1/coffee_machine_pb.js";
import type { CommandSchema } from "../../gen/tether/v1/command_pb.js";
import { LedMode } from "../../gen/tether/v1/led_pb.js";
import type { TetherDevice } from "../../src/device/tether-device.js";
import { TaskExecutor, type UplinkBody } from "../../src/device/task-executor.js";
import { connectDevice } from "../../src/device/tether-device.js";
import { startEmbeddedBroker, type EmbeddedBroker } from "../../src/link/embedded-broker.js";
import { ALL_UPLINKS, downlinkTopic, parseDeviceTopic, presenceTopic } from "../../src/protocol/topics.js";
import { ensureDevPki, issueDeviceCertificate, issueServiceCertificate, type DevPki } from "../../src/pki/dev-pki.js";
import { startCoffeeSim, startLedSim } from "../helpers/devices.js";
import { startFleet, type Fleet } from "../../src/sim/fleet.js";
import type { SimConnectOptions } from "../../src/sim/simulator.js";

type CommandInit = MessageInitShape<typeof CommandSchema>;
type Body = Uplink["body"];
/** Uplink body values by case, e.g. `BodyValues["result"]` is `TaskResult`. */
type BodyValues = { [B in Body as B["case"] & string]: B["value"] };

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });
const brew = (recipe = Recipe.ESPRESSO): CommandInit => ({ kind: { case: "coffeeMachine", value: { action: { case: "brew", value: { recipe } } } } });

describe("task executor", () => {
  it("never evicts a queued or running task from its de-duplication cache", async () => {
    const sent: UplinkBody[] = [];
    let release!: () => void;
    const blocked = new Promise<void>((r) => (release = r));
    const executor = new TaskExecutor({
      cacheSize: 1,
      log,
      send: (body) => sent.push(body),
      handler: async () => {
        await blocked;
        return {};
      },
    });
    const request = (taskId: string) => create(TaskRequestSchema, { taskId, attempt: 1 });
    executor.receive(request("a")); // runs, blocked
    executor.receive(request("b")); // queued; cache over its size, but nothing is finished
    executor.receive(request("c"));
    executor.receive(request("a")); // duplicates: acked, not queued again
    executor.receive(request("b"));
    release();
    await new Promise((r) => setTimeout(r, 20));
    expect([...executor.executions]).toEqual([
      ["a", 1],
      ["b", 1],
      ["c", 1],
    ]);
    expect(sent.filter((b) => b.case === "ack")).toHaveLength(5);
    expect(sent.filter((b) => b.case === "result")).toHaveLength(3);
  });
});

describe("device SDK and simulators over the embedded broker", () => {
  let dir: string;
  let pki: DevPki;
  let broker: EmbeddedBroker;
  let tether: MqttClient;
  let url: string;
  let svc: { certPem: string; keyPem: string };
  const uplinks = new Map<string, Body[]>();
  const closeables: { close(): Promise<void> }[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "tether-device-"));
    pki = await ensureDevPki(dir);
    broker = await startEmbeddedBroker({ host: "127.0.0.1", port: 0, tls: { key: pki.server.keyPem, cert: pki.server.certPem, ca: pki.caPem }, log });
    url = `mqtts://127.0.0.1:${broker.port}`;
    // The test plays Tether's role: it sends downlink and reads every device's uplink.
    svc = await issueServiceCertificate(pki.ca);
    tether = await mqtt.connectAsync(url, {
      clientId: "tether-test",
      cert: svc.certPem,
      key: svc.keyPem,
      ca: pki.caPem,
      reconnectPeriod: 0,
      protocolVersion: 4,
    });
    await tether.subscribeAsync(ALL_UPLINKS, { qos: 1 });
    tether.on("message", (topic, payload) => {
      const parsed = parseDeviceTopic(topic);
      if (parsed?.channel !== "up") return;
      const list = uplinks.get(parsed.deviceId) ?? [];
      list.push(fromBinary(UplinkSchema, payload).body);
      uplinks.set(parsed.deviceId, list);
    });
  });

  afterEach(async () => {
    await Promise.allSettled(closeables.splice(0).map((c) => c.close()));
  });

  afterAll(async () => {
    await tether?.endAsync(true);
    await broker?.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function conn(deviceId: string): Promise<SimConnectOptions> {
    const { certPem, keyPem } = await issueDeviceCertificate(pki.ca, deviceId);
    return { url, deviceId, cert: certPem, key: keyPem, ca: pki.caPem, log, reconnectPeriodMs: 100 };
  }

  function track<T extends { device: TetherDevice }>(started: T): T {
    closeables.push(started.device);
    return started;
  }

  async function downlink(deviceId: string, body: MessageInitShape<typeof DownlinkSchema>["body"]): Promise<void> {
    const message = create(DownlinkSchema, { messageId: crypto.randomUUID(), body });
    await tether.publishAsync(downlinkTopic(deviceId), Buffer.from(toBinary(DownlinkSchema, message)), { qos: 1 });
  }

  const task = (deviceId: string, taskId: string, command: CommandInit, extra: { attempt?: number; deadlineMs?: number } = {}) =>
    downlink(deviceId, {
      case: "task",
      value: { taskId, attempt: extra.attempt ?? 1, command, ...(extra.deadlineMs ? { deadline: timestampFromMs(extra.deadlineMs) } : {}) },
    });

  /** The uplink bodies of one kind a device sent, optionally for one task. */
  function sent<C extends keyof BodyValues>(deviceId: string, kind: C, taskId?: string): BodyValues[C][] {
    return (uplinks.get(deviceId) ?? [])
      .filter((b) => b.case === kind)
      .map((b) => b.value as BodyValues[C])
      .filter((v) => taskId === undefined || (v as { taskId?: string }).taskId === taskId);
  }

  const until = async (cond: () => boolean, ms = 5_000) => {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) throw new Error("timed out");
      await new Promise((r) => setTimeout(r, 10));
    }
  };

  it("acks, reports progress and the brewing state, then the result of a brew", async () => {
    const { sim } = track(await startCoffeeSim({ ...(await conn("coffee-flow")), brewMs: 100 }));
    await task("coffee-flow", "t-flow", brew());
    await until(() => sent("coffee-flow", "result", "t-flow").length === 1);

    const kinds = (uplinks.get("coffee-flow") ?? []).filter((b) => b.case !== "state").map((b) => b.case);
    expect(kinds[0]).toBe("hello");
    expect(kinds.slice(1)).toEqual(["ack", "progress", "progress", "progress", "progress", "progress", "result"]);
    expect(sent("coffee-flow", "progress").map((p) => [p.percent, p.message])).toEqual([
      [20, "grinding"],
      [40, "grinding"],
      [60, "brewing"],
      [80, "brewing"],
      [100, "done"],
    ]);
    const states = sent("coffee-flow", "state").map((s) => (s.kind.case === "coffeeMachine" ? s.kind.value : undefined));
    expect(states.some((s) => s?.status === CoffeeMachineStatus.BREWING && s.currentBrew?.recipe === Recipe.ESPRESSO)).toBe(true);
    const versions = sent("coffee-flow", "state").map((s) => s.version);
    expect([...versions].sort((a, b) => (a < b ? -1 : 1))).toEqual(versions);

    const [result] = sent("coffee-flow", "result");
    expect(result!.outcome.case).toBe("success");
    const value = result!.outcome.value as { kind: { value: { dispensedMl: number; state: { waterLevelPercent: number } } } };
    expect(value.kind.value.dispensedMl).toBe(40);
    expect(value.kind.value.state.waterLevelPercent).toBe(90);
    expect(sim.status).toBe(CoffeeMachineStatus.IDLE);
  });

  it("re-acks a duplicate task and re-sends its cached result without executing it again", async () => {
    const { device } = track(await startCoffeeSim({ ...(await conn("coffee-dup")), brewMs: 150 }));
    await task("coffee-dup", "t-dup", brew());
    await task("coffee-dup", "t-dup", brew(), { attempt: 2 }); // arrives while running: ack only
    await until(() => sent("coffee-dup", "result", "t-dup").length === 1);
    expect(sent("coffee-dup", "ack", "t-dup").map((a) => a.attempt)).toEqual([1, 2]);

    await task("coffee-dup", "t-dup", brew(), { attempt: 3 }); // after it finished: ack + cached result
    await until(() => sent("coffee-dup", "result", "t-dup").length === 2);
    expect(sent("coffee-dup", "ack", "t-dup").map((a) => a.attempt)).toEqual([1, 2, 3]);
    const [first, again] = sent("coffee-dup", "result", "t-dup");
    expect(again).toEqual(first);
    expect(device.executions.get("t-dup")).toBe(1);
  });

  it("rejects a task whose deadline has passed without executing it", async () => {
    const { device } = track(await startCoffeeSim({ ...(await conn("coffee-late")), brewMs: 50 }));
    await task("coffee-late", "t-late", brew(), { deadlineMs: Date.now() - 1_000 });
    await until(() => sent("coffee-late", "result", "t-late").length === 1);
    expect(sent("coffee-late", "ack", "t-late")).toHaveLength(1);
    expect(sent("coffee-late", "result", "t-late")[0]!.outcome).toMatchObject({ case: "rejected", value: { reason: "deadline passed" } });
    expect(device.executions.has("t-late")).toBe(false);
  });

  it("cancels a running brew and skips a queued task", async () => {
    const { sim, device } = track(await startCoffeeSim({ ...(await conn("coffee-cancel")), brewMs: 2_000 }));
    await task("coffee-cancel", "t-run", brew());
    await task("coffee-cancel", "t-queued", brew());
    await until(() => sent("coffee-cancel", "progress", "t-run").length >= 1);
    await downlink("coffee-cancel", { case: "cancel", value: { taskId: "t-queued", reason: "owner changed mind" } });
    await until(() => sent("coffee-cancel", "result", "t-queued").length === 1);
    expect(sent("coffee-cancel", "result", "t-run")).toHaveLength(0); // reported at once, not after the brew ahead

    await downlink("coffee-cancel", { case: "cancel", value: { taskId: "t-run", reason: "owner changed mind" } });
    await until(() => sent("coffee-cancel", "result", "t-run").length === 1);
    for (const id of ["t-run", "t-queued"]) {
      expect(sent("coffee-cancel", "result", id)[0]!.outcome).toMatchObject({ case: "rejected", value: { reason: "canceled" } });
    }
    expect(sent("coffee-cancel", "progress", "t-run").length).toBeLessThan(5);
    expect(sim.status).toBe(CoffeeMachineStatus.IDLE);
    expect(sim.brew).toBeUndefined();
    expect([...device.executions]).toEqual([["t-run", 1]]);
  });

  it("fails a brew with WATER_TANK_EMPTY when the tank is low, and rejects when off", async () => {
    const { sim } = track(await startCoffeeSim({ ...(await conn("coffee-dry")), brewMs: 50, waterPercent: 5 }));
    await task("coffee-dry", "t-dry", brew());
    await until(() => sent("coffee-dry", "result", "t-dry").length === 1);
    expect(sent("coffee-dry", "result", "t-dry")[0]!.outcome).toMatchObject({
      case: "failed",
      value: { code: "WATER_TANK_EMPTY", details: { water_level_percent: "5", required_percent: "10" } },
    });
    expect(sim.status).toBe(CoffeeMachineStatus.ERROR);

    await task("coffee-dry", "t-off", { kind: { case: "coffeeMachine", value: { action: { case: "setPower", value: false } } } });
    await task("coffee-dry", "t-brew-off", brew());
    await until(() => sent("coffee-dry", "result", "t-brew-off").length === 1);
    expect(sent("coffee-dry", "result", "t-brew-off")[0]!.outcome).toMatchObject({ case: "rejected", value: { reason: "machine is off" } });
  });

  it("leaves a retained offline after a crash, and goes online with a Hello on reconnect", async () => {
    const options = await conn("coffee-crash");
    const first = await startCoffeeSim({ ...options, brewMs: 50 });
    await first.device.close({ abrupt: true });

    const retained = async () => {
      const watcher = await mqtt.connectAsync(url, { clientId: `watch-${Date.now()}`, cert: svc.certPem, key: svc.keyPem, ca: pki.caPem, reconnectPeriod: 0 });
      const got = new Promise<string>((resolve) => watcher.once("message", (_t, payload) => resolve(payload.toString())));
      await watcher.subscribeAsync(presenceTopic("coffee-crash"), { qos: 1 });
      const value = await got;
      await watcher.endAsync(true);
      return value;
    };
    await until(() => !first.device.connected);
    await new Promise((r) => setTimeout(r, 100));
    expect(await retained()).toBe("offline");

    const hellosBefore = sent("coffee-crash", "hello").length;
    track(await startCoffeeSim({ ...options, brewMs: 50, firmwareVersion: "2.0.0" }));
    await until(() => sent("coffee-crash", "hello").length === hellosBefore + 1);
    expect(sent("coffee-crash", "hello").at(-1)).toMatchObject({ firmwareVersion: "2.0.0", wantPendingTasks: true });
    expect(await retained()).toBe("online");
  });

  it("receives a task queued while it was offline (persistent session) and executes it once", async () => {
    const options = await conn("coffee-away");
    const first = await startCoffeeSim({ ...options, brewMs: 50 });
    await first.device.close();
    await task("coffee-away", "t-away", brew());
    const { device } = track(await startCoffeeSim({ ...options, brewMs: 50 }));
    await until(() => sent("coffee-away", "result", "t-away").length === 1);
    expect(device.executions.get("t-away")).toBe(1);
  });

  it("reconnects by itself after the broker drops it, says Hello again and gets what was sent meanwhile", async () => {
    const { device } = track(await startCoffeeSim({ ...(await conn("coffee-blip")), brewMs: 20 }));
    const reconnected = new Promise<void>((r) => device.once("connect", () => r()));
    const dropped = new Promise<void>((r) => device.once("disconnect", () => r()));
    broker.disconnectClient("coffee-blip");
    await dropped;
    await task("coffee-blip", "t-blip", brew()); // queued by the broker in the persistent session
    await reconnected;
    await until(() => sent("coffee-blip", "result", "t-blip").length === 1);
    expect(sent("coffee-blip", "hello")).toHaveLength(2);
    expect(device.executions.get("t-blip")).toBe(1);
  });

  it("drops a malformed downlink and keeps working", async () => {
    const { device } = track(await startLedSim(await conn("led-garbage")));
    await tether.publishAsync(downlinkTopic("led-garbage"), Buffer.from([0xff, 0xff, 0xff, 0x0f, 0x01]), { qos: 1 });
    await tether.publishAsync(downlinkTopic("led-garbage"), Buffer.from("not protobuf at all"), { qos: 1 });
    await task("led-garbage", "t-after", { kind: { case: "led", value: { action: { case: "setPower", value: true } } } });
    await until(() => sent("led-garbage", "result", "t-after").length === 1);
    expect(device.connected).toBe(true);
    expect(sent("led-garbage", "result", "t-after")[0]!.outcome.case).toBe("success");
  });

  it("applies an LED command and reports the new state; ignores stale desired state", async () => {
    const { sim } = track(await startLedSim(await conn("led-cmd")));
    const color = { red: 10, green: 20, blue: 30 };
    await task("led-cmd", "t-color", { kind: { case: "led", value: { action: { case: "setColor", value: color } } } });
    await until(() => sent("led-cmd", "result", "t-color").length === 1);
    const outcome = sent("led-cmd", "result", "t-color")[0]!.outcome;
    expect(outcome).toMatchObject({ case: "success", value: { kind: { case: "led", value: { state: { color } } } } });
    await until(() => sent("led-cmd", "state").some((s) => s.kind.case === "led" && s.kind.value.color?.blue === 30));

    await task("led-cmd", "t-bad", { kind: { case: "led", value: { action: { case: "setBrightness", value: 150 } } } });
    await until(() => sent("led-cmd", "result", "t-bad").length === 1);
    expect(sent("led-cmd", "result", "t-bad")[0]!.outcome.case).toBe("rejected");

    await downlink("led-cmd", { case: "desiredState", value: { version: 5n, kind: { case: "led", value: { mode: LedMode.BLINK, brightness: 40 } } } });
    await downlink("led-cmd", { case: "desiredState", value: { version: 4n, kind: { case: "led", value: { brightness: 1 } } } });
    await until(() => sent("led-cmd", "state").some((s) => s.kind.case === "led" && s.kind.value.mode === LedMode.BLINK));
    await new Promise((r) => setTimeout(r, 100));
    expect(sim.state).toMatchObject({ mode: LedMode.BLINK, brightness: 40, color });
  });

  it("refuses to connect with a client id that is not the certificate's CN", async () => {
    const options = await conn("led-right");
    await expect(connectDevice({ ...options, deviceId: "led-wrong", handler: () => ({}) })).rejects.toThrow(/Not authorized/);
  });

  it("publishes a retained offline:clean on a graceful close", async () => {
    const { device } = await startLedSim(await conn("led-bye"));
    await device.close();
    expect(device.connected).toBe(false);
    const watcher = await mqtt.connectAsync(url, { clientId: "watch-bye", cert: svc.certPem, key: svc.keyPem, ca: pki.caPem, reconnectPeriod: 0 });
    const got = new Promise<string>((resolve) => watcher.once("message", (_t, payload) => resolve(payload.toString())));
    await watcher.subscribeAsync(presenceTopic("led-bye"), { qos: 1 });
    expect(await got).toBe("offline:clean");
    await watcher.endAsync(true);
  });

  it("answers requestCurrentTask with undefined on NoPendingTask", async () => {
    const { device } = track(await startLedSim(await conn("led-query")));
    const answer = device.requestCurrentTask();
    await until(() => sent("led-query", "currentTaskQuery").length === 1);
    await downlink("led-query", { case: "noPendingTask", value: {} });
    await expect(answer).resolves.toBeUndefined();
  });

  it("ticks a fleet's clock and publishes each product's readings with the link's signal strength", async () => {
    const fleet: Fleet = await startFleet({
      url,
      ca: pki.caPem,
      log,
      kind: "thermostat",
      count: 2,
      idPrefix: "fleet-th",
      tickMs: 50,
      telemetry: true,
      options: { roomCelsius: 15, timeScale: 10 },
      issue: (id) => issueDeviceCertificate(pki.ca, id),
    });
    closeables.push({ close: fleet.stop });
    const metrics = (id: string) => new Set(sent(id, "telemetry").flatMap((t) => t.samples.map((x) => x.metric)));
    await until(() => fleet.deviceIds.every((id) => metrics(id).size === 3));
    expect([...metrics("fleet-th-1")].sort()).toEqual(["humidity_percent", "signal_strength", "temperature_celsius"]);
    // Heating from 15 °C toward the default setpoint: the reported temperature rises.
    await until(() => sent("fleet-th-1", "state").some((st) => st.kind.case === "thermostat" && (st.kind.value.temperatureCelsius ?? 0) >= 15.5));
  });

  it("runs a fleet with offline devices and injected faults, never executing a task twice", async () => {
    const fleet: Fleet = await startFleet({
      url,
      ca: pki.caPem,
      log,
      kind: "coffee_machine",
      count: 8,
      idPrefix: "fleet",
      offlineRatio: 0.25,
      failRatio: 0.3,
      options: { brewMs: 20 },
      issue: (id) => issueDeviceCertificate(pki.ca, id),
    });
    closeables.push({ close: fleet.stop });
    expect(fleet.devices).toHaveLength(6);
    expect(fleet.offlineIds).toHaveLength(2);
    const online = fleet.deviceIds.filter((id) => !fleet.offlineIds.includes(id));
    for (const id of online) {
      for (let n = 0; n < 3; n++) {
        await task(id, `${id}-t${n}`, brew(Recipe.HOT_WATER));
        await task(id, `${id}-t${n}`, brew(Recipe.HOT_WATER), { attempt: 2 }); // redelivery
      }
    }
    await until(() => online.every((id) => new Set(sent(id, "result").map((r) => r.taskId)).size === 3));
    expect(fleet.executions()).toBe(18);
    expect(fleet.duplicates()).toBe(0);
    const outcomes = online.flatMap((id) => sent(id, "result").map((r) => r.outcome.case));
    expect(outcomes).toContain("failed");
    expect(outcomes).toContain("success");
  });
});
