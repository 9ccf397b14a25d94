import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { type Job, JobExecution_TargetState as TargetState, Job_State as JobState } from "../../gen/tether/v1/job_pb.js";
import { JobService } from "../../gen/tether/v1/job_service_pb.js";
import { Task_State as TaskState } from "../../gen/tether/v1/task_pb.js";
import { TaskService } from "../../gen/tether/v1/task_service_pb.js";
import { eventually } from "../helpers/devices.js";
import { type LedFleet, startLedFleet } from "../helpers/led-fleet.js";
import { connectClient, startTestStack, type TestStack } from "../helpers/stack.js";

// 1,000 simulated LEDs over real MQTT, every 20th of which fails every command (5 %).
const N = 1000;
const ids = Array.from({ length: N }, (_, i) => `fl-${String(i + 1).padStart(4, "0")}`);
const failing = new Set(ids.filter((_, i) => i % 20 === 19));

let s: TestStack;
let fleet: LedFleet;
beforeAll(async () => {
  s = await startTestStack({ TETHER_JOB_TICK_MS: "200", TETHER_TASK_SWEEP_MS: "250" });
  const devices = connectClient(s, DeviceService, "grpc");
  for (let i = 0; i < N; i += 50) {
    await Promise.all(
      ids.slice(i, i + 50).map((deviceId) => devices.createDevice({ deviceId, device: { labels: { fleet: "f1" }, kind: { case: "led", value: {} } } })),
    );
  }
  fleet = await startLedFleet(s, ids, failing);
}, 120_000);
afterAll(async () => {
  await fleet?.stop();
  await s?.cleanup();
});

const jobs = () => connectClient(s, JobService, "grpc");
const brightness = (n: number) => ({ kind: { case: "led" as const, value: { action: { case: "setBrightness" as const, value: n } } } });
const selector = { case: "selector" as const, value: { filter: 'labels.fleet = "f1"' } };

/** Every execution of a job (all pages). */
async function allExecutions(job: string, filter = "") {
  const out = [];
  let pageToken = "";
  do {
    const page = await jobs().listJobExecutions({ parent: job, pageSize: 1000, pageToken, filter });
    out.push(...page.executions);
    pageToken = page.nextPageToken;
  } while (pageToken);
  return out;
}

describe("a job over 1,000 simulated devices", () => {
  it("completes with correct counts, watched live until it ends", async () => {
    const job = await jobs().createJob({ jobId: "all-dim", job: { displayName: "Dim everything", command: brightness(10), target: selector } });
    expect(job.state).toBe(JobState.RUNNING);
    expect(job.progress?.targetCount).toBe(1000n);

    const seen: Job[] = [];
    for await (const { job: j } of jobs().watchJob({ name: "jobs/all-dim" })) seen.push(j!); // ends by itself
    const last = seen.at(-1)!;
    expect(last.state).toBe(JobState.COMPLETED);
    expect(seen.length).toBeGreaterThan(1);
    // Counts only grow while it runs.
    const succeeded = seen.map((j) => Number(j.progress!.succeededCount));
    expect(succeeded).toEqual([...succeeded].sort((a, b) => a - b));

    const p = (await jobs().getJob({ name: "jobs/all-dim" })).progress!;
    expect({
      targets: p.targetCount,
      executions: p.executionCount,
      succeeded: p.succeededCount,
      failed: p.failedCount,
      inFlight: p.inFlightCount,
      pending: p.pendingCount,
      skipped: p.skippedCount,
    }).toEqual({ targets: 1000n, executions: 1000n, succeeded: 950n, failed: 50n, inFlight: 0n, pending: 0n, skipped: 0n });
    expect(p.executionsByState.map((c) => [TaskState[c.state], c.count])).toEqual([
      ["SUCCEEDED", 950n],
      ["FAILED", 50n],
    ]);

    // The failed executions are exactly the failing devices, and every device ran the command once.
    const failed = await allExecutions("jobs/all-dim", "task_state = FAILED");
    expect(failed.map((e) => e.device.slice("devices/".length)).sort()).toEqual([...failing].sort());
    expect(fleet.totalExecutions()).toBe(1000);
    expect(ids.every((id) => fleet.executions(id) === 1)).toBe(true);
    // Executions are ordinary tasks, linked to the job.
    const task = await connectClient(s, TaskService, "grpc").getTask({ name: failed[0]!.task });
    expect(task.job).toBe("jobs/all-dim");
    expect(task.state).toBe(TaskState.FAILED);
    expect(task.error?.code).toBe("SIMULATED_FAULT");
  }, 90_000);

  it("with a 2 % abort threshold it aborts, and no further device gets the command", async () => {
    const before = fleet.totalExecutions();
    await jobs().createJob({
      jobId: "all-bright",
      job: {
        command: brightness(90),
        target: selector,
        rollout: { maxPerMinute: 600 },
        abortCriteria: { failureThresholdPercent: 2, minFinishedExecutions: 50 },
      },
    });
    const aborted = await eventually(
      async () => {
        const j = await jobs().getJob({ name: "jobs/all-bright" });
        return j.state === JobState.ABORTED && j.progress!.inFlightCount === 0n && j;
      },
      60_000,
      "the job to abort and its in-flight executions to finish",
    );
    const p = aborted.progress!;
    expect(aborted.stateReason).toMatch(/^aborted: \d+ failed of \d+ finished/);
    expect(Number(p.failedCount) / Number(p.succeededCount + p.failedCount)).toBeGreaterThan(0.02);
    expect(p.executionCount).toBeGreaterThanOrEqual(50n);
    expect(p.executionCount).toBeLessThan(300n); // far from the 1,000 it would have reached
    expect(p.pendingCount).toBe(0n);
    expect(p.skippedCount + p.executionCount).toBe(1000n);

    // Some time later: still no new execution, and the devices ran exactly the executions created.
    await new Promise((r) => setTimeout(r, 1500));
    const later = (await jobs().getJob({ name: "jobs/all-bright" })).progress!;
    expect(later.executionCount).toBe(p.executionCount);
    expect(fleet.totalExecutions() - before).toBe(Number(p.executionCount));
    const execs = await allExecutions("jobs/all-bright");
    expect(execs.filter((e) => e.targetState === TargetState.SKIPPED)).toHaveLength(Number(p.skippedCount));
    expect(execs.filter((e) => e.targetState === TargetState.SKIPPED).every((e) => e.reason === "the job was aborted" && e.task === "")).toBe(true);

    // The rate (600/min = 10/s, bucket of 2 s) held, measured from the tasks' create times.
    const times = execs
      .filter((e) => e.createTime)
      .map((e) => timestampDate(e.createTime!).getTime())
      .sort((a, b) => a - b);
    for (const start of times) {
      const inWindow = times.filter((t) => t >= start && t < start + 3000).length;
      expect(inWindow).toBeLessThanOrEqual(30 + 20); // 3 s at 10/s, plus a full bucket
    }
  }, 90_000);

  it("refuses a command for another kind and unknown devices, naming the field", async () => {
    const err = await jobs()
      .createJob({
        job: {
          command: { kind: { case: "coffeeMachine", value: { action: { case: "clean", value: {} } } } },
          target: { case: "devices", value: { devices: ["devices/fl-0001", "devices/nope"] } },
        },
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.InvalidArgument);
    const v = (err as ConnectError).findDetails(BadRequestSchema).flatMap((b) => b.fieldViolations.map((x) => `${x.field}: ${x.description}`));
    expect(v).toEqual([
      "job.devices.devices: 1 device(s) do not exist: devices/nope",
      "job.devices.devices: 1 device(s) are not a coffee_machine, the command's kind: devices/fl-0001",
    ]);
    const kind = await jobs()
      .createJob({ job: { command: brightness(1), target: { case: "selector", value: { filter: 'kind = "coffee_machine"' } } } })
      .catch((e: unknown) => e);
    expect((kind as ConnectError).findDetails(BadRequestSchema)[0]!.fieldViolations[0]!.description).toBe(
      "selects kind coffee_machine, but the command is for a led",
    );
  });
});
