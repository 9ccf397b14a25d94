import { execFile } from "node:child_process";
import path from "node:path";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { JobExecution_TargetState as TargetState } from "../../gen/tether/v1/job_pb.js";
import { JobService } from "../../gen/tether/v1/job_service_pb.js";
import { RuleService } from "../../gen/tether/v1/rule_service_pb.js";
import { Task_State as State } from "../../gen/tether/v1/task_pb.js";
import { TaskService } from "../../gen/tether/v1/task_service_pb.js";
import { eventually, ledSim } from "../helpers/devices.js";
import { connectClient, startTestStack, type TestStack } from "../helpers/stack.js";

// Task priorities as users set them: on a task, a rule and a job over gRPC, and with the CLI;
// the device is the SDK's simulated LED over MQTT.

let s: TestStack;
beforeAll(async () => {
  s = await startTestStack({ TETHER_JOB_TICK_MS: "200", TETHER_TASK_SWEEP_MS: "250" });
});
afterAll(async () => {
  await s?.cleanup();
});

const devices = () => connectClient(s, DeviceService, "grpc");
const tasks = () => connectClient(s, TaskService, "grpc");
const jobs = () => connectClient(s, JobService, "grpc");
const rules = () => connectClient(s, RuleService, "grpc");
const led = (deviceId: string) => devices().createDevice({ deviceId, device: { kind: { case: "led", value: {} } } });
const brightness = (n: number) => ({ kind: { case: "led" as const, value: { action: { case: "setBrightness" as const, value: n } } } });
const taskId = (name: string) => name.split("/")[3]!;

/** Runs the real binary against the stack; resolves with its exit code and output. */
function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env, TETHER_ADDRESS: s.baseUrl, TETHER_CERTS_DIR: path.join(s.dir, "certs") };
  return new Promise((resolve) => {
    execFile(process.execPath, [path.resolve(import.meta.dirname, "../../bin/tether.js"), ...args], { env, cwd: s.dir }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe("task priorities", () => {
  it("a job at priority 9 overtakes an older task at priority 1 queued for an offline device", async () => {
    await led("prio-offline");
    const low = await tasks().createTask({ parent: "devices/prio-offline", task: { command: brightness(1), priority: 1 } });
    expect(low.priority).toBe(1);
    const job = await jobs().createJob({
      jobId: "prio-urgent",
      job: { command: brightness(90), target: { case: "devices", value: { devices: ["devices/prio-offline"] } }, taskPriority: 9 },
    });
    expect(job.taskPriority).toBe(9);
    expect((await jobs().getJob({ name: job.name })).taskPriority).toBe(9);
    // The job's execution is queued behind the older task before the device comes online.
    const execution = await eventually(
      async () => (await jobs().listJobExecutions({ parent: job.name })).executions.find((e) => e.targetState === TargetState.DISPATCHED),
      10_000,
      "the job's execution",
    );
    const high = await tasks().getTask({ name: execution.task });
    expect({ state: high.state, priority: high.priority }).toEqual({ state: State.QUEUED, priority: 9 });
    expect(high.sequence).toBeGreaterThan(low.sequence);

    const { device } = await ledSim(s, "prio-offline");
    try {
      await eventually(
        async () => (await Promise.all([low.name, high.name].map((name) => tasks().getTask({ name })))).every((t) => t.state === State.SUCCEEDED),
        10_000,
        "both tasks succeeded",
      );
      // The executor runs tasks in the order they arrive: the job's came first.
      expect([...device.executions.keys()]).toEqual([taskId(high.name), taskId(low.name)]);
    } finally {
      await device.close();
    }
  }, 30_000);

  it("a rule's task_priority is the priority of the tasks it fires, and GetRule shows it", async () => {
    await led("prio-rule");
    const rule = await rules().createRule({
      ruleId: "prio-rule",
      rule: {
        trigger: { case: "oneShotTime", value: timestampFromDate(new Date(Date.now() + 1000)) },
        target: { case: "device", value: "devices/prio-rule" },
        command: brightness(7),
        taskPriority: 8,
      },
    });
    expect(rule.taskPriority).toBe(8);
    expect((await rules().getRule({ name: rule.name })).taskPriority).toBe(8);
    const run = await eventually(
      async () => (await rules().listRuleRuns({ parent: rule.name })).runs.find((r) => r.targets[0]?.task),
      10_000,
      "the rule's run",
    );
    const task = await tasks().getTask({ name: run.targets[0]!.task });
    expect(task.priority).toBe(8);
    expect(task.requestId).toMatch(/^rule:prio-rule:/);
  }, 20_000);

  it("a rule starting a job passes its template's task_priority to the job, and refuses its own", async () => {
    const template = { command: brightness(3), target: { case: "devices" as const, value: { devices: ["devices/prio-rule"] } }, taskPriority: 2 };
    const at = timestampFromDate(new Date(Date.now() + 1000));
    const bad = await rules()
      .createRule({ ruleId: "prio-job-bad", rule: { trigger: { case: "oneShotTime", value: at }, target: { case: "job", value: template }, taskPriority: 7 } })
      .catch((e: Error) => e);
    expect(String(bad)).toContain("rule.task_priority: must be unset for a job target: set job.task_priority");
    const rule = await rules().createRule({
      ruleId: "prio-job",
      rule: { trigger: { case: "oneShotTime", value: at }, target: { case: "job", value: template } },
    });
    expect(rule.target.case === "job" && rule.target.value.taskPriority).toBe(2);
    const run = await eventually(async () => (await rules().listRuleRuns({ parent: rule.name })).runs.find((r) => r.job), 10_000, "the rule's job");
    expect((await jobs().getJob({ name: run.job })).taskPriority).toBe(2);
  }, 20_000);

  it("tether tasks create --priority 7 creates the task at 7, and --priority 12 is a usage error (exit 2)", async () => {
    await led("prio-cli");
    const made = await cli("tasks", "create", "prio-cli", "brightness", "40", "--priority", "7");
    expect(made.code).toBe(0);
    expect(made.stdout).toMatch(/^priority\s+7$/m);
    const name = /^name\s+(devices\/\S+)$/m.exec(made.stdout)![1]!;
    expect((await tasks().getTask({ name })).priority).toBe(7);
    expect((await cli("tasks", "list", "prio-cli")).stdout).toMatch(/QUEUED\s+7\s+brightness 40\s/);

    const refused = await cli("tasks", "create", "prio-cli", "brightness", "40", "--priority", "12");
    expect(refused).toEqual({ code: 2, stdout: "", stderr: "error: --priority 12: expected 0 (lowest) to 9 (highest)\nrun tether tasks --help\n" });
    expect((await tasks().listTasks({ parent: "devices/prio-cli" })).tasks).toHaveLength(1);
  }, 30_000);

  it("tether rules create and jobs create take --priority, and rules get / jobs get show it", async () => {
    await led("prio-cli-2");
    const job = await cli("jobs", "create", "prio-cli-job", "--devices", "prio-cli-2", "--command", "brightness 1", "--priority", "9");
    expect(job.code).toBe(0);
    expect(job.stdout).toMatch(/^task_priority\s+9$/m);
    expect((await jobs().getJob({ name: "jobs/prio-cli-job" })).taskPriority).toBe(9);
    const rule = await cli("rules", "create", "prio-cli-rule", "--at", "+1h", "--device", "prio-cli-2", "--command", "brightness 2", "--priority", "3");
    expect(rule.code).toBe(0);
    expect((await rules().getRule({ name: "rules/prio-cli-rule" })).taskPriority).toBe(3);
    expect((await cli("rules", "get", "prio-cli-rule")).stdout).toMatch(/^task_priority\s+3$/m);
    const refused = await cli("jobs", "create", "prio-cli-bad", "--devices", "prio-cli-2", "--command", "brightness 1", "--priority", "high");
    expect(refused).toEqual({ code: 2, stdout: "", stderr: "error: --priority high: expected 0 (lowest) to 9 (highest)\nrun tether jobs --help\n" });
  }, 60_000);
});
