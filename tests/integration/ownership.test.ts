import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { JobExecution_TargetState as TargetState } from "../../gen/tether/v1/job_pb.js";
import { JobService } from "../../gen/tether/v1/job_service_pb.js";
import { RuleRun_State as RunState } from "../../gen/tether/v1/rule_pb.js";
import { RuleService } from "../../gen/tether/v1/rule_service_pb.js";
import { Grant_Role, ShareService } from "../../gen/tether/v1/share_service_pb.js";
import { TaskService } from "../../gen/tether/v1/task_service_pb.js";
import { AuthService } from "../../gen/tether/v1/auth_service_pb.js";
import { UserService } from "../../gen/tether/v1/user_service_pb.js";
import { anonymousClient, bearerClient, userToken } from "../helpers/auth.js";
import { eventually } from "../helpers/devices.js";
import { connectClient, startTestStack, type TestStack } from "../helpers/stack.js";

// Issue 16, point 3: a device's owner moves only to an existing user, by an admin or the owner;
// rules and jobs act with their creator's rights, checked at every firing and rollout batch.

let s: TestStack;
const tokens: Record<string, string> = {};
beforeAll(async () => {
  s = await startTestStack();
  for (const u of ["olivia", "oscar", "vera", "sam", "dave"]) tokens[u] = await userToken(s, u);
  // adam is an admin user (a token, not the bootstrap certificate): his jobs run with his rights.
  await admin(UserService).createUser({ userId: "adam", password: "pw-adam-123456", user: { admin: true } });
  tokens.adam = (await anonymousClient(s, AuthService).login({ user: "adam", password: "pw-adam-123456" })).accessToken;
  await as("olivia", DeviceService).createDevice({ deviceId: "olivia-led", device: { kind: { case: "led", value: {} } } });
  await as("dave", DeviceService).createDevice({ deviceId: "dave-led", device: { kind: { case: "led", value: {} } } });
  await share("olivia", "users/oscar", "olivia-led", Grant_Role.OPERATOR);
  await share("olivia", "users/vera", "olivia-led", Grant_Role.OWNER);
}, 90_000);
afterAll(async () => {
  await s?.cleanup();
});

function as<S extends Parameters<typeof bearerClient>[1]>(user: string, service: S) {
  return bearerClient(s, service, tokens[user]!);
}
const admin = <S extends Parameters<typeof bearerClient>[1]>(service: S) => connectClient(s, service, "grpc");
const share = (by: string, principal: string, device: string, role: Grant_Role) =>
  as(by, ShareService).createGrant({ grant: { principal, target: { case: "device", value: `devices/${device}` }, role } });
const power = { kind: { case: "led" as const, value: { action: { case: "setPower" as const, value: true } } } };
const oneShot = (at: Date) => ({ case: "oneShotTime" as const, value: timestampFromDate(at) });

/** `CODE field,field` of a refusal (the BadRequest fields for INVALID_ARGUMENT). */
async function refusal(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (err === undefined) return "ok";
  const c = ConnectError.from(err);
  const fields = c.findDetails(BadRequestSchema).flatMap((b) => b.fieldViolations.map((v) => v.field));
  return [Code[c.code], ...fields].join(" ");
}
const runsOf = async (id: string) => (await admin(RuleService).listRuleRuns({ parent: `rules/${id}` })).runs;
const tasksOf = async (device: string) => (await admin(TaskService).listTasks({ parent: `devices/${device}`, pageSize: 1000 })).tasks;

describe("device ownership", () => {
  const setOwner = (user: string | undefined, owner: string) => {
    const client = user ? as(user, DeviceService) : admin(DeviceService);
    return client.updateDevice({ device: { name: "devices/olivia-led", owner }, updateMask: { paths: ["owner"] } });
  };

  it("UpdateDevice sets owner only to an existing user, only by an admin or the owner, never to empty", async () => {
    expect(await refusal(setOwner("vera", "vera"))).toBe("PermissionDenied"); // an owner *share* is not ownership
    expect(await refusal(setOwner("oscar", "oscar"))).toBe("PermissionDenied");
    expect(await refusal(setOwner("olivia", "mallory"))).toBe("InvalidArgument device.owner");
    expect(await refusal(setOwner("olivia", ""))).toBe("InvalidArgument device.owner");
    expect(await refusal(setOwner(undefined, ""))).toBe("InvalidArgument device.owner");
    expect(await refusal(setOwner(undefined, "users/sam"))).toBe("InvalidArgument device.owner");
    // Nothing was stored by any refusal.
    expect((await admin(DeviceService).getDevice({ name: "devices/olivia-led" })).owner).toBe("olivia");

    expect((await setOwner("olivia", "sam")).owner).toBe("sam");
    expect(await refusal(setOwner("olivia", "olivia"))).toBe("NotFound"); // she gave it away: it is not hers to see
    expect((await setOwner(undefined, "olivia")).owner).toBe("olivia"); // an admin moves anyone's device
  });

  it("CreateDevice with an explicit owner: an existing user, and someone else only by an admin", async () => {
    const make = (client: ReturnType<typeof admin<typeof DeviceService>>, id: string, owner: string) =>
      client.createDevice({ deviceId: id, device: { owner, kind: { case: "led", value: {} } } });
    expect(await refusal(make(admin(DeviceService), "for-nobody", "mallory"))).toBe("InvalidArgument device.owner");
    expect(await refusal(make(as("olivia", DeviceService), "for-sam", "sam"))).toBe("PermissionDenied");
    await expect(admin(DeviceService).getDevice({ name: "devices/for-nobody" })).rejects.toMatchObject({ code: Code.NotFound });
    expect((await make(admin(DeviceService), "for-sam", "sam")).owner).toBe("sam");
    expect((await make(as("olivia", DeviceService), "for-olivia", "olivia")).owner).toBe("olivia");
  });
});

describe("rules and jobs run with their creator's rights", () => {
  it("a rule whose creator lost the share does not command the device, and its run says why", async () => {
    const at = new Date(Date.now() + 3000);
    const byOscar = await as("oscar", RuleService).createRule({
      ruleId: "by-oscar",
      rule: { trigger: oneShot(at), target: { case: "device", value: "devices/olivia-led" }, command: power },
    });
    // The same occurrence by the owner: the control, it fires.
    await as("olivia", RuleService).createRule({
      ruleId: "by-olivia",
      rule: { trigger: oneShot(at), target: { case: "device", value: "devices/olivia-led" }, command: power },
    });
    expect(byOscar.creator).toBe("users/oscar");
    const grant = (await admin(ShareService).listGrants({ device: "devices/olivia-led" })).grants.find((g) => g.principal === "users/oscar")!;
    await as("olivia", ShareService).deleteGrant({ name: grant.name });

    const [run] = await eventually(
      async () => {
        const r = await runsOf("by-oscar");
        return r.length > 0 && r;
      },
      15_000,
      "by-oscar's run",
    );
    expect(run!.state).toBe(RunState.FAILED);
    expect(run!.targets).toHaveLength(1);
    expect(run!.targets[0]!.task).toBe("");
    expect(run!.targets[0]!.error).toMatch(/^skipped: creator users\/oscar lost operator on devices\/olivia-led/);
    expect(run!.stateReason).toContain("skipped: creator users/oscar lost operator on devices/olivia-led");
    const [control] = await eventually(
      async () => {
        const r = await runsOf("by-olivia");
        return r.length > 0 && r;
      },
      15_000,
      "by-olivia's run",
    );
    expect(control!.state).toBe(RunState.FIRED);
    const tasks = await tasksOf("olivia-led");
    expect(tasks.filter((t) => t.stateReason.startsWith("created by rules/by-oscar"))).toEqual([]);
    expect(tasks.filter((t) => t.stateReason.startsWith("created by rules/by-olivia"))).toHaveLength(1);
  });

  it("a rule or job whose creator was deleted commands nothing, and says why", async () => {
    const at = new Date(Date.now() + 3000);
    await as("dave", RuleService).createRule({
      ruleId: "by-dave",
      rule: { trigger: oneShot(at), target: { case: "device", value: "devices/dave-led" }, command: power },
    });
    const job = await as("adam", JobService).createJob({
      jobId: "by-adam",
      job: { command: power, target: { case: "devices", value: { devices: ["devices/dave-led", "devices/olivia-led"] } }, startTime: timestampFromDate(at) },
    });
    expect(job.creator).toBe("users/adam");
    // The control: the same job by the admin certificate (users/admin, an admin) is rolled out.
    const control = await admin(JobService).createJob({
      jobId: "by-admin",
      job: { command: power, target: { case: "devices", value: { devices: ["devices/dave-led"] } }, startTime: timestampFromDate(at) },
    });
    expect(control.creator).toBe("users/admin");
    // dave still owns dave-led: deleting him would hand it to whoever registers "dave" next.
    expect(await refusal(admin(UserService).deleteUser({ name: "users/dave" }))).toBe("FailedPrecondition");
    expect((await admin(UserService).getUser({ name: "users/dave" })).name).toBe("users/dave");
    await admin(DeviceService).updateDevice({ device: { name: "devices/dave-led", owner: "olivia" }, updateMask: { paths: ["owner"] } });
    await admin(UserService).deleteUser({ name: "users/dave" });
    await admin(UserService).deleteUser({ name: "users/adam" });

    const [run] = await eventually(
      async () => {
        const r = await runsOf("by-dave");
        return r.length > 0 && r;
      },
      15_000,
      "by-dave's run",
    );
    expect(run!.state).toBe(RunState.FAILED);
    expect(run!.targets[0]!.error).toBe("skipped: creator users/dave lost operator on devices/dave-led (no such user: deleted, or never registered)");

    const executions = await eventually(
      async () => {
        await s.app.runJobs();
        const res = await admin(JobService).listJobExecutions({ parent: "jobs/by-adam" });
        return res.executions.every((e) => e.targetState === TargetState.SKIPPED) && res.executions;
      },
      15_000,
      "by-adam's targets skipped",
    );
    expect(executions.map((e) => [e.device, e.task, e.reason])).toEqual([
      ["devices/dave-led", "", "skipped: creator users/adam lost operator on devices/dave-led (no such user: deleted, or never registered)"],
      ["devices/olivia-led", "", "skipped: creator users/adam lost operator on devices/olivia-led (no such user: deleted, or never registered)"],
    ]);
    const dispatched = await eventually(
      async () => {
        await s.app.runJobs();
        const res = await admin(JobService).listJobExecutions({ parent: "jobs/by-admin" });
        return res.executions.every((e) => e.targetState === TargetState.DISPATCHED) && res.executions;
      },
      15_000,
      "by-admin's target dispatched",
    );
    expect(dispatched[0]!.task).toMatch(/^devices\/dave-led\/tasks\//);
    const daveTasks = await tasksOf("dave-led");
    expect(daveTasks.filter((t) => /rules\/by-dave|jobs\/by-adam/.test(t.stateReason))).toEqual([]);
  });

  it("creator is output only: UpdateRule cannot set it", async () => {
    await admin(RuleService).createRule({
      ruleId: "mine",
      rule: { trigger: oneShot(new Date(Date.now() + 3_600_000)), target: { case: "device", value: "devices/olivia-led" }, command: power },
    });
    expect(
      await refusal(as("olivia", RuleService).updateRule({ rule: { name: "rules/mine", creator: "users/olivia" }, updateMask: { paths: ["creator"] } })),
    ).toBe("InvalidArgument update_mask.paths");
    expect((await admin(RuleService).getRule({ name: "rules/mine" })).creator).toBe("users/admin");
  });
});
