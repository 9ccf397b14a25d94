import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { Job_State as JobState } from "../../gen/tether/v1/job_pb.js";
import { JobService } from "../../gen/tether/v1/job_service_pb.js";
import { RuleRun_State as RunState } from "../../gen/tether/v1/rule_pb.js";
import { RuleService } from "../../gen/tether/v1/rule_service_pb.js";
import { bearerClient, userToken } from "../helpers/auth.js";
import { eventually } from "../helpers/devices.js";
import { type LedFleet, startLedFleet } from "../helpers/led-fleet.js";
import { connectClient, startTestStack, type TestStack } from "../helpers/stack.js";

// A job's scheduled start from a rule: a one-shot rule starts a job over simulated LEDs on real
// MQTT, driven through the public API as an operator would.

const ids = Array.from({ length: 40 }, (_, i) => `jr-${String(i + 1).padStart(3, "0")}`);
let s: TestStack;
let fleet: LedFleet;
beforeAll(async () => {
  s = await startTestStack({ TETHER_JOB_TICK_MS: "200", TETHER_TASK_SWEEP_MS: "250" });
  const devices = connectClient(s, DeviceService, "grpc");
  await Promise.all(ids.map((deviceId) => devices.createDevice({ deviceId, device: { labels: { floor: "3" }, kind: { case: "led", value: {} } } })));
  fleet = await startLedFleet(s, ids);
}, 60_000);
afterAll(async () => {
  await fleet?.stop();
  await s?.cleanup();
});

const rules = () => connectClient(s, RuleService, "grpc");
const jobs = () => connectClient(s, JobService, "grpc");
const powerOff = { kind: { case: "led" as const, value: { action: { case: "setPower" as const, value: false } } } };
const template = {
  displayName: "Floor 3 lights off",
  command: powerOff,
  target: { case: "selector" as const, value: { filter: 'labels.floor = "3"' } },
  rollout: { maxPerMinute: 600 },
};

async function fieldErrors(p: Promise<unknown>): Promise<string[]> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConnectError);
  expect((err as ConnectError).code).toBe(Code.InvalidArgument);
  return (err as ConnectError).findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => `${v.field}: ${v.description}`));
}

describe("a rule that starts a job", () => {
  it("starts the job at the rule's time; the job rolls out to every matching device once", async () => {
    const at = new Date(Date.now() + 1500);
    const rule = await rules().createRule({
      ruleId: "floor3-off",
      rule: { trigger: { case: "oneShotTime", value: timestampFromDate(at) }, target: { case: "job", value: template } },
    });
    expect(rule.target.case).toBe("job");
    expect(rule.command).toBeUndefined(); // the job carries it
    expect(rule.nextFireTime).toBeDefined();

    const run = await eventually(async () => (await rules().listRuleRuns({ parent: "rules/floor3-off" })).runs[0], 15_000, "the rule's run");
    const jobId = `floor3-off-${at
      .toISOString()
      .replace(/\.\d+Z$/, "")
      .replace(/[-:]/g, "")
      .toLowerCase()}`;
    expect(run.state).toBe(RunState.FIRED);
    expect(run.job).toBe(`jobs/${jobId}`);
    expect(run.stateReason).toContain("over 40 devices");

    const done = await eventually(
      async () => {
        const j = await jobs().getJob({ name: run.job });
        return j.state === JobState.COMPLETED ? j : undefined;
      },
      30_000,
      "the job to complete",
    );
    expect(done.displayName).toBe("Floor 3 lights off");
    expect(done.stateReason).not.toBe("");
    expect(done.progress?.succeededCount).toBe(40n);
    expect(ids.every((id) => fleet.executions(id) === 1)).toBe(true);
    // A one-shot rule fires once: nothing more is scheduled, and no second job appears.
    expect((await rules().getRule({ name: "rules/floor3-off" })).nextFireTime).toBeUndefined();
    expect((await jobs().listJobs({})).jobs.filter((j) => j.name.startsWith("jobs/floor3-off")).map((j) => j.name)).toEqual([run.job]);
  }, 60_000);

  it("validates the template as CreateJob does, with the fields under rule.job", async () => {
    const future = { case: "oneShotTime" as const, value: timestampFromDate(new Date(Date.now() + 3_600_000)) };
    expect(await fieldErrors(rules().createRule({ rule: { trigger: future, target: { case: "job", value: { ...template, command: undefined } } } }))).toEqual([
      expect.stringMatching(/^rule\.job\.command: is required/),
    ]);
    expect(
      await fieldErrors(
        rules().createRule({
          rule: { trigger: future, target: { case: "job", value: { ...template, target: { case: "selector", value: { filter: "labels.floor = " } } } } },
        }),
      ),
    ).toEqual([expect.stringMatching(/^rule\.job\.selector\.filter: /)]);
    expect(
      await fieldErrors(rules().createRule({ rule: { trigger: future, target: { case: "job", value: { ...template, startTime: future.value } } } })),
    ).toEqual(["rule.job.start_time: must be unset: the job starts when the rule fires"]);
    // The command lives in the template; a rule-level command or TTL would be ambiguous.
    expect(
      await fieldErrors(
        rules().createRule({ rule: { trigger: future, target: { case: "job", value: template }, command: powerOff, taskTtl: { seconds: 60n } } }),
      ),
    ).toEqual(["rule.command: must be unset for a job target: set job.command", "rule.task_ttl: must be unset for a job target: set job.task_ttl"]);
    expect(
      await fieldErrors(
        rules().createRule({
          rule: { trigger: { case: "eventTrigger", value: { metric: "temp", comparison: 3, threshold: 30 } }, target: { case: "job", value: template } },
        }),
      ),
    ).toEqual(["rule.event_trigger: cannot start a job: use cron or one_shot_time"]);
  });

  it("is admin-only, as jobs are: a user can neither create nor see one", async () => {
    const created = await rules().createRule({
      ruleId: "nightly-off",
      rule: { trigger: { case: "cron", value: { expression: "0 0 2 * * *", timeZone: "Europe/Paris" } }, target: { case: "job", value: template } },
    });
    expect(created.target.case).toBe("job");
    const user = bearerClient(s, RuleService, await userToken(s, "jr-operator"));
    const denied = await user
      .createRule({ rule: { trigger: { case: "cron", value: { expression: "0 0 3 * * *" } }, target: { case: "job", value: template } } })
      .catch((e: ConnectError) => e);
    expect((denied as ConnectError).code).toBe(Code.PermissionDenied);
    await expect(user.getRule({ name: "rules/nightly-off" })).rejects.toMatchObject({ code: Code.NotFound });
    expect((await user.listRules({})).rules.map((r) => r.name)).not.toContain("rules/nightly-off");
  });

  it("tether jobs schedule creates the rule as the README shows; tether rules get describes it", async () => {
    const env = { ...process.env, TETHER_ADDRESS: s.baseUrl, TETHER_CERTS_DIR: path.join(s.dir, "certs") };
    const cli = (...args: string[]) =>
      promisify(execFile)(process.execPath, [path.resolve(import.meta.dirname, "../../bin/tether.js"), ...args], { env, cwd: s.dir });
    const out = await cli(
      "jobs",
      "schedule",
      "b7-night",
      "--cron",
      "0 0 2 * * *",
      "--tz",
      "Europe/Paris",
      "--selector",
      'labels.floor = "3"',
      "--kind",
      "led",
      "--command",
      "power off",
      "--rate",
      "500",
    );
    expect(out.stdout).toMatch(/^created rules\/b7-night: starts a job at \S+ and on "0 0 2 \* \* \*" \(Europe\/Paris\)/);
    const rule = await rules().getRule({ name: "rules/b7-night" });
    expect(rule.target.case === "job" && rule.target.value.rollout?.maxPerMinute).toBe(500);
    expect(rule.target.case === "job" && rule.target.value.command?.kind.case).toBe("led");
    expect((await cli("rules", "get", "b7-night")).stdout).toMatch(/target\s+a job over labels\.floor = "3"/);
  }, 30_000);
});
