import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { EventTrigger_Comparison as Comparison } from "../../gen/tether/v1/rule_pb.js";
import { RuleService } from "../../gen/tether/v1/rule_service_pb.js";
import { Task_State as TaskState } from "../../gen/tether/v1/task_pb.js";
import { TaskService } from "../../gen/tether/v1/task_service_pb.js";
import { TelemetryService } from "../../gen/tether/v1/telemetry_service_pb.js";
import { simulateCommand } from "../../src/cli/simulate.js";
import { ThermostatAction, ThermostatMode } from "../../gen/tether/v1/thermostat_pb.js";
import { eventually, thermostatSim } from "../helpers/devices.js";
import { connectClient, startTestStack, type TestStack } from "../helpers/stack.js";

let s: TestStack;
beforeAll(async () => {
  s = await startTestStack();
});
afterAll(async () => {
  await s?.cleanup();
});

const devices = () => connectClient(s, DeviceService, "grpc");
const tasks = () => connectClient(s, TaskService, "connect");
const rules = () => connectClient(s, RuleService, "connect");
const telemetry = () => connectClient(s, TelemetryService, "grpc");
const thermostat = (id: string) => devices().createDevice({ deviceId: id, device: { displayName: "Living room", kind: { case: "thermostat", value: {} } } });
/** The thermostat's last reported state, as Tether stores it. */
const reported = async (id: string) => {
  const d = await devices().getDevice({ name: `devices/${id}` });
  return d.kind.case === "thermostat" ? d.kind.value.reported : undefined;
};

describe("a thermostat, end to end", () => {
  it("applies a desired setpoint, boosts, and its room temperature is stored and queried back", async () => {
    const created = await thermostat("th-living");
    expect(created.kind.case).toBe("thermostat");
    // A cold room, time ten times faster, so heating visibly works within the test.
    const { device, sim } = await thermostatSim(s, "th-living", { roomCelsius: 16, mode: ThermostatMode.OFF, timeScale: 10, tickMs: 200, telemetry: true });
    try {
      await eventually(async () => (await reported("th-living"))?.mode === ThermostatMode.OFF, 8000, "the first report");

      await devices().updateDevice({
        device: { name: "devices/th-living", kind: { case: "thermostat", value: { desired: { setpointCelsius: 22.5, mode: ThermostatMode.HEAT } } } },
        updateMask: { paths: ["thermostat.desired"] },
      });
      const applied = await eventually(
        async () => {
          const r = await reported("th-living");
          return r?.setpointCelsius === 22.5 && r.mode === ThermostatMode.HEAT && r.action === ThermostatAction.HEATING ? r : undefined;
        },
        8000,
        "the setpoint applied and reported",
      );
      expect(sim.setpoint).toBe(22.5);
      expect(applied.temperatureCelsius).toBeGreaterThanOrEqual(15);

      const before = Date.now();
      const boost = await tasks().createTask({
        parent: "devices/th-living",
        task: { command: { kind: { case: "thermostat", value: { action: { case: "boost", value: { minutes: 30 } } } } } },
      });
      const done = await eventually(
        async () => {
          const t = await tasks().getTask({ name: boost.name });
          return t.state === TaskState.SUCCEEDED ? t : undefined;
        },
        8000,
        "the boost task succeeded",
      );
      const result = done.result?.kind.case === "thermostat" ? done.result.kind.value.state : undefined;
      expect(result?.boostEndTime).toBeDefined();
      // 30 minutes at ten times speed: three wall-clock minutes from now.
      expect(timestampDate(result!.boostEndTime!).getTime()).toBeGreaterThan(before + 170_000);
      await eventually(async () => (await reported("th-living"))?.boostEndTime !== undefined, 8000, "boost_end_time reported");

      // The room warms: readings rise and are stored as telemetry.
      const range = () => ({ startTime: timestampFromDate(new Date(before - 60_000)), endTime: timestampFromDate(new Date(Date.now() + 60_000)) });
      const points = await eventually(
        async () => {
          const res = await telemetry().queryTelemetry({ parent: "devices/th-living", metrics: ["temperature_celsius"], ...range(), pageSize: 1000 });
          return res.points.length >= 5 ? res.points : undefined;
        },
        10_000,
        "stored temperature readings",
      );
      expect(points.every((p) => p.metric === "temperature_celsius")).toBe(true);
      const values = points.map((p) => p.value);
      expect(values.at(-1)!).toBeGreaterThan(values[0]!);
      expect(values.every((v) => v > 10 && v < 35)).toBe(true);
      const humidity = await telemetry().queryTelemetry({ parent: "devices/th-living", metrics: ["humidity_percent"], ...range() });
      expect(humidity.points.length).toBeGreaterThan(0);
      expect(humidity.points.every((p) => p.value >= 30 && p.value <= 60)).toBe(true);
    } finally {
      await device.close();
    }
  });

  it("an event rule on a cold room switches the thermostat to HEAT, which it executes", async () => {
    await thermostat("th-cold");
    await rules().createRule({
      ruleId: "cold-room-heat",
      rule: {
        displayName: "Heat a cold room",
        trigger: { case: "eventTrigger", value: { metric: "temperature_celsius", comparison: Comparison.LT, threshold: 18 } },
        target: { case: "device", value: "devices/th-cold" },
        command: { kind: { case: "thermostat", value: { action: { case: "setMode", value: ThermostatMode.HEAT } } } },
      },
    });
    const { device, sim } = await thermostatSim(s, "th-cold", { roomCelsius: 15, mode: ThermostatMode.OFF, tickMs: 200, telemetry: true });
    try {
      await eventually(async () => (await reported("th-cold"))?.mode === ThermostatMode.HEAT, 10_000, "mode HEAT reported");
      expect(sim.mode).toBe(ThermostatMode.HEAT);
      const [run, ...more] = (await rules().listRuleRuns({ parent: "rules/cold-room-heat" })).runs;
      expect(more).toHaveLength(0);
      expect(run!.triggerDevice).toBe("devices/th-cold");
      expect(run!.triggerValue).toBeLessThan(18);
      const task = await eventually(
        async () => {
          const t = await tasks().getTask({ name: run!.targets[0]!.task });
          return t.state === TaskState.SUCCEEDED ? t : undefined;
        },
        8000,
        "the set_mode task succeeded",
      );
      expect(task.command?.kind.case).toBe("thermostat");
      // 15 °C is below setpoint − hysteresis: in HEAT the thermostat heats.
      await eventually(async () => (await reported("th-cold"))?.action === ThermostatAction.HEATING, 8000, "heating reported");
    } finally {
      await device.close();
    }
  });

  it("tether simulate --kind thermostat registers devices and runs them with their product options", async () => {
    let stop!: () => void;
    const stopped = new Promise<void>((r) => (stop = r));
    const log = vi.spyOn(console, "log").mockImplementation(() => undefined);
    const argv = [
      "--kind",
      "thermostat",
      "--count",
      "2",
      "--prefix",
      "cli-th",
      "--telemetry-rate",
      "5",
      "--room-celsius",
      "14",
      "--time-scale",
      "10",
      "--address",
      s.baseUrl,
      "--certs",
      path.join(s.dir, "certs"),
      "--mqtt",
      s.mqttUrl,
    ];
    const running = simulateCommand(argv, { stop: stopped });
    let printed = "";
    try {
      await eventually(async () => (await reported("cli-th-2"))?.temperatureCelsius !== undefined, 15_000, "a simulated thermostat reporting");
      const d = await devices().getDevice({ name: "devices/cli-th-1" });
      expect(d.kind.case).toBe("thermostat");
      expect(d.labels).toMatchObject({ simulated: "true" });
      // A second simulator on the same ids would take over these sessions: refused.
      await expect(simulateCommand(argv, { stop: Promise.resolve() })).rejects.toThrow(/devices\/cli-th-\d is connected already \(another simulator\?\)/);
      const range = () => ({ startTime: timestampFromDate(new Date(Date.now() - 60_000)), endTime: timestampFromDate(new Date(Date.now() + 60_000)) });
      const temps = await eventually(
        async () => {
          const res = await telemetry().queryTelemetry({ parent: "devices/cli-th-1", metrics: ["temperature_celsius"], ...range() });
          return res.points.length >= 2 ? res.points : undefined;
        },
        10_000,
        "telemetry from the CLI's fleet",
      );
      expect(temps[0]!.value).toBeLessThan(15); // --room-celsius reached the behaviour
    } finally {
      stop();
      await running;
      printed = log.mock.calls.flat().join("\n");
      log.mockRestore();
    }
    expect(printed).toMatch(/2 thermostats online/);
  });
});
