import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { DeviceSelector_Mode as Mode, Job_State as JobState } from "../../gen/tether/v1/job_pb.js";
import { JobService } from "../../gen/tether/v1/job_service_pb.js";
import { Task_State as TaskState } from "../../gen/tether/v1/task_pb.js";
import { TaskService } from "../../gen/tether/v1/task_service_pb.js";
import { eventually, ledSim } from "../helpers/devices.js";
import { type LedFleet, startLedFleet } from "../helpers/led-fleet.js";
import { connectClient, freePort, startTestStack, type TestStack } from "../helpers/stack.js";

let s: TestStack;
beforeAll(async () => {
  // Fixed ports: devices reconnect to the same address after the restart.
  s = await startTestStack({
    TETHER_PORT: String(await freePort()),
    TETHER_MQTT_PORT: String(await freePort()),
    TETHER_JOB_TICK_MS: "200",
    TETHER_JOB_RESCAN_MS: "300",
    TETHER_TASK_SWEEP_MS: "250",
  });
});
afterAll(async () => {
  await s?.cleanup();
});

const jobs = () => connectClient(s, JobService, "grpc");
const devices = () => connectClient(s, DeviceService, "grpc");
const brightness = (n: number) => ({ kind: { case: "led" as const, value: { action: { case: "setBrightness" as const, value: n } } } });

describe("jobs across restarts and new devices", () => {
  it("a restart mid-rollout commands no device twice and skips none", async () => {
    const ids = Array.from({ length: 150 }, (_, i) => `rr-${String(i + 1).padStart(3, "0")}`);
    for (let i = 0; i < ids.length; i += 50) {
      await Promise.all(
        ids.slice(i, i + 50).map((deviceId) => devices().createDevice({ deviceId, device: { labels: { wave: "rr" }, kind: { case: "led", value: {} } } })),
      );
    }
    const fleet: LedFleet = await startLedFleet(s, ids);
    try {
      // A result lost while the broker was down leaves its task DELIVERED until the execution
      // timeout; the retry then gets the device's cached result (it never runs a task twice).
      // A short timeout keeps that recovery within the test's patience.
      await jobs().createJob({
        jobId: "restart",
        job: {
          command: brightness(33),
          target: { case: "selector", value: { filter: 'labels.wave = "rr"' } },
          rollout: { maxPerMinute: 1200 },
          executionTimeout: { seconds: 5n },
        },
      });
      const mid = await eventually(
        async () => {
          const p = (await jobs().getJob({ name: "jobs/restart" })).progress!;
          return p.executionCount >= 30n && p;
        },
        20_000,
        "part of the rollout",
      );
      expect(mid.pendingCount).toBeGreaterThan(0n); // stopped mid-rollout, not after it

      await s.app.stop(); // the broker goes down with it: every device is cut off
      await s.restart();

      const done = await eventually(
        async () => {
          const j = await jobs().getJob({ name: "jobs/restart" });
          return j.state === JobState.COMPLETED && j;
        },
        100_000,
        "the job to complete after the restart",
      );
      expect(done.progress?.executionCount).toBe(150n);
      expect(done.progress?.succeededCount).toBe(150n);
      expect(done.progress?.skippedCount).toBe(0n);
      // Each device ran the command exactly once, and holds exactly one task of the job.
      expect(ids.filter((id) => fleet.executions(id) !== 1)).toEqual([]);
      const tasks = connectClient(s, TaskService, "grpc");
      const perDevice = await Promise.all(
        ids.slice(0, 20).map(async (id) => (await tasks.listTasks({ parent: `devices/${id}` })).tasks.filter((t) => t.job === "jobs/restart").length),
      );
      expect(perDevice.every((n) => n === 1)).toBe(true);
    } finally {
      await fleet.stop();
    }
  }, 180_000);

  it("a continuous job reaches a device created after the job started", async () => {
    await devices().createDevice({ deviceId: "cj-early", device: { labels: { floor: "7" }, kind: { case: "led", value: {} } } });
    const job = await jobs().createJob({
      jobId: "floor-7",
      job: { command: brightness(70), target: { case: "selector", value: { filter: 'labels.floor = "7"', mode: Mode.CONTINUOUS } } },
    });
    expect(job.progress?.targetCount).toBe(1n);
    await devices().createDevice({ deviceId: "cj-late", device: { labels: { floor: "7" }, kind: { case: "led", value: {} } } });
    const { device, sim } = await ledSim(s, "cj-late");
    try {
      const exec = await eventually(
        async () => {
          const e = (await jobs().listJobExecutions({ parent: "jobs/floor-7", filter: "task_state = SUCCEEDED" })).executions;
          return e.find((x) => x.device === "devices/cj-late");
        },
        15_000,
        "the late device's execution to succeed",
      );
      expect(exec.task).toMatch(/^devices\/cj-late\/tasks\//);
      expect(sim.state.brightness).toBe(70);
      const j = await jobs().getJob({ name: "jobs/floor-7" });
      expect(j.state).toBe(JobState.RUNNING); // continuous: it keeps running
      expect(j.progress?.targetCount).toBe(2n);
      const canceled = await jobs().cancelJob({ name: "jobs/floor-7", cancelInFlight: true, reason: "floor done" });
      expect(canceled.state).toBe(JobState.CANCELED);
      // The offline early device's queued execution is canceled through the task cancel path.
      await eventually(
        async () => (await jobs().getJob({ name: "jobs/floor-7" })).progress!.executionsByState.some((c) => c.state === TaskState.CANCELED),
        10_000,
        "the in-flight execution canceled",
      );
    } finally {
      await device.close();
    }
  }, 60_000);
});
