import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { JobService } from "../../gen/tether/v1/job_service_pb.js";
import { RuleService } from "../../gen/tether/v1/rule_service_pb.js";
import { Grant_Role, ShareService } from "../../gen/tether/v1/share_service_pb.js";
import type { Task } from "../../gen/tether/v1/task_pb.js";
import { TaskService } from "../../gen/tether/v1/task_service_pb.js";
import { TelemetryService } from "../../gen/tether/v1/telemetry_service_pb.js";
import { UserService } from "../../gen/tether/v1/user_service_pb.js";
import { bearerClient, userToken } from "../helpers/auth.js";
import { eventually, rawDevice } from "../helpers/devices.js";
import { connectClient, startTestStack, type TestStack } from "../helpers/stack.js";

let s: TestStack;
const tokens: Record<string, string> = {};
beforeAll(async () => {
  s = await startTestStack();
  for (const u of ["olivia", "oscar", "vera", "sam"]) tokens[u] = await userToken(s, u);
  // olivia owns olivia-led (she created it) and shares it: oscar operates, vera views. sam is a stranger with his own device.
  await as("olivia", DeviceService).createDevice({ deviceId: "olivia-led", device: { labels: { room: "hall" }, kind: { case: "led", value: {} } } });
  await as("sam", DeviceService).createDevice({ deviceId: "sam-coffee", device: { kind: { case: "coffeeMachine", value: {} } } });
  await share("olivia", "users/oscar", "olivia-led", Grant_Role.OPERATOR);
  await share("olivia", "users/vera", "olivia-led", Grant_Role.VIEWER);
}, 60_000);
afterAll(async () => {
  await s?.cleanup();
});

function as<S extends Parameters<typeof bearerClient>[1]>(user: string, service: S) {
  return bearerClient(s, service, tokens[user]!);
}
const admin = <S extends Parameters<typeof bearerClient>[1]>(service: S) => connectClient(s, service, "grpc");
const power = { command: { kind: { case: "led" as const, value: { action: { case: "setPower" as const, value: true } } } } };
const brew = { command: { kind: { case: "coffeeMachine" as const, value: { action: { case: "brew" as const, value: { recipe: 1 } } } } } };
const share = (by: string, principal: string, device: string, role: Grant_Role) =>
  as(by, ShareService).createGrant({ grant: { principal, target: { case: "device", value: `devices/${device}` }, role } });

/** Collects a WatchTasks stream; `ready` resolves once the initial snapshot's first item arrived. */
function watchTasks(client: Client<typeof TaskService>, name = "devices/-") {
  const ctrl = new AbortController();
  const seen: Task[] = [];
  const done = (async () => {
    try {
      for await (const r of client.watchTasks({ name, sendInitial: true }, { signal: ctrl.signal })) seen.push(r.task!);
    } catch (err) {
      if (!ctrl.signal.aborted) throw err;
    }
  })();
  return { seen, stop: async () => (ctrl.abort(), await done) };
}

describe("per-device rights", () => {
  it("a viewer reads but cannot create tasks or change the desired state", async () => {
    expect((await as("vera", DeviceService).getDevice({ name: "devices/olivia-led" })).owner).toBe("olivia");
    await expect(as("vera", TaskService).createTask({ parent: "devices/olivia-led", task: power })).rejects.toMatchObject({ code: Code.PermissionDenied });
    await expect(
      as("vera", DeviceService).updateDevice({
        device: { name: "devices/olivia-led", kind: { case: "led", value: { desired: { power: true } } } },
        updateMask: { paths: ["led.desired"] },
      }),
    ).rejects.toMatchObject({ code: Code.PermissionDenied });
  });

  it("an operator sends tasks and changes desired state, but cannot relabel or delete the device", async () => {
    const task = await as("oscar", TaskService).createTask({ parent: "devices/olivia-led", task: power });
    expect(task.name).toMatch(/^devices\/olivia-led\/tasks\//);
    expect((await as("vera", TaskService).getTask({ name: task.name })).name).toBe(task.name);
    await as("oscar", DeviceService).updateDevice({
      device: { name: "devices/olivia-led", kind: { case: "led", value: { desired: { brightness: 30 } } } },
      updateMask: { paths: ["led.desired.brightness"] },
    });
    await expect(
      as("oscar", DeviceService).updateDevice({ device: { name: "devices/olivia-led", labels: { room: "x" } }, updateMask: { paths: ["labels"] } }),
    ).rejects.toMatchObject({
      code: Code.PermissionDenied,
    });
    await expect(as("oscar", DeviceService).deleteDevice({ name: "devices/olivia-led" })).rejects.toMatchObject({ code: Code.PermissionDenied });
    await expect(
      as("oscar", ShareService).createGrant({
        grant: { principal: "users/sam", target: { case: "device", value: "devices/olivia-led" }, role: Grant_Role.VIEWER },
      }),
    ).rejects.toMatchObject({
      code: Code.PermissionDenied,
    });
  });

  it("a stranger sees nothing: NOT_FOUND (not PERMISSION_DENIED) on Get, nothing in List", async () => {
    const sam = (svc: typeof DeviceService) => as("sam", svc);
    await expect(sam(DeviceService).getDevice({ name: "devices/olivia-led" })).rejects.toMatchObject({ code: Code.NotFound });
    await expect(sam(DeviceService).deleteDevice({ name: "devices/olivia-led" })).rejects.toMatchObject({ code: Code.NotFound });
    expect((await sam(DeviceService).listDevices({})).devices.map((d) => d.name)).toEqual(["devices/sam-coffee"]);
    const anyTask = (await admin(TaskService).listTasks({ parent: "devices/olivia-led" })).tasks[0]!;
    await expect(as("sam", TaskService).getTask({ name: anyTask.name })).rejects.toMatchObject({ code: Code.NotFound });
    await expect(as("sam", TaskService).cancelTask({ name: anyTask.name })).rejects.toMatchObject({ code: Code.NotFound });
    await expect(as("sam", TaskService).listTasks({ parent: "devices/olivia-led" })).rejects.toMatchObject({ code: Code.NotFound });
    await expect(as("sam", TaskService).createTask({ parent: "devices/olivia-led", task: power })).rejects.toMatchObject({ code: Code.NotFound });
    expect((await as("sam", TaskService).listTasks({ parent: "devices/-" })).tasks.filter((t) => t.name.includes("olivia-led"))).toEqual([]);
    const range = { startTime: timestampFromDate(new Date(Date.now() - 3_600_000)) };
    await expect(as("sam", TelemetryService).queryTelemetry({ parent: "devices/olivia-led", ...range })).rejects.toMatchObject({ code: Code.NotFound });
    await expect(as("sam", TelemetryService).getLatestTelemetry({ parent: "devices/olivia-led" })).rejects.toMatchObject({ code: Code.NotFound });
    // The admin still sees everything.
    expect((await admin(DeviceService).listDevices({})).devices.map((d) => d.name)).toEqual(["devices/olivia-led", "devices/sam-coffee"]);
  });

  it("a stranger's WatchTasks never carries tasks of devices they cannot see", async () => {
    await as("sam", TaskService).createTask({ parent: "devices/sam-coffee", task: brew, requestId: "sam-initial" });
    const w = watchTasks(as("sam", TaskService));
    try {
      await eventually(async () => w.seen.length >= 1, 10_000, "sam's initial snapshot");
      const hidden = await as("oscar", TaskService).createTask({ parent: "devices/olivia-led", task: power });
      const marker = await as("sam", TaskService).createTask({ parent: "devices/sam-coffee", task: brew, requestId: "sam-marker" });
      await eventually(async () => w.seen.some((t) => t.name === marker.name), 10_000, "the marker task");
      expect(w.seen.map((t) => t.name)).not.toContain(hidden.name);
      expect(w.seen.every((t) => t.name.startsWith("devices/sam-coffee/"))).toBe(true);
    } finally {
      await w.stop();
    }
  });

  it("a stranger's StreamTelemetry never carries samples of devices they cannot see", async () => {
    const hallDev = await rawDevice(s, "olivia-led");
    const samDev = await rawDevice(s, "sam-coffee");
    const samGot: string[] = [];
    const adminGot: string[] = [];
    const ctrl = new AbortController();
    const collect = async (client: Client<typeof TelemetryService>, into: string[]) => {
      try {
        for await (const r of client.streamTelemetry({ parent: "devices/-" }, { signal: ctrl.signal })) into.push(`${r.sample!.device}:${r.sample!.value}`);
      } catch (err) {
        if (!ctrl.signal.aborted) throw err;
      }
    };
    const streams = [collect(as("sam", TelemetryService), samGot), collect(admin(TelemetryService), adminGot)];
    const sample = (value: number) => ({
      case: "telemetry" as const,
      value: { samples: [{ metric: "temperature", value, time: timestampFromDate(new Date()) }] },
    });
    try {
      // Sam's stream is live once one of his own samples comes through.
      let n = 0;
      await eventually(
        async () => {
          await samDev.send(sample(++n));
          return samGot.length > 0;
        },
        15_000,
        "sam's stream live",
      );
      await hallDev.send(sample(1000));
      await eventually(async () => adminGot.some((x) => x.endsWith(":1000")), 10_000, "the hidden sample published");
      await samDev.send(sample(2000));
      await eventually(async () => samGot.some((x) => x.endsWith(":2000")), 10_000, "sam's marker sample");
      expect(samGot.filter((x) => x.includes("olivia-led"))).toEqual([]);
      expect(adminGot.some((x) => x.includes("olivia-led"))).toBe(true);
    } finally {
      ctrl.abort();
      await Promise.all(streams);
      await hallDev.close();
      await samDev.close();
    }
  });

  it("sharing and unsharing apply at once, also to an already open watch stream", async () => {
    const w = watchTasks(as("sam", TaskService));
    try {
      await eventually(async () => w.seen.length >= 1, 10_000, "sam's initial snapshot");
      const grant = await share("olivia", "users/sam", "olivia-led", Grant_Role.VIEWER);
      expect((await as("sam", DeviceService).getDevice({ name: "devices/olivia-led" })).name).toBe("devices/olivia-led");
      const visible = await as("oscar", TaskService).createTask({ parent: "devices/olivia-led", task: power });
      await eventually(async () => w.seen.some((t) => t.name === visible.name), 10_000, "a task of the newly shared device");

      await as("olivia", ShareService).deleteGrant({ name: grant.name });
      await expect(as("sam", DeviceService).getDevice({ name: "devices/olivia-led" })).rejects.toMatchObject({ code: Code.NotFound });
      const hidden = await as("oscar", TaskService).createTask({ parent: "devices/olivia-led", task: power });
      const marker = await as("sam", TaskService).createTask({ parent: "devices/sam-coffee", task: brew });
      await eventually(async () => w.seen.some((t) => t.name === marker.name), 10_000, "the marker task");
      expect(w.seen.map((t) => t.name)).not.toContain(hidden.name);
    } finally {
      await w.stop();
    }
  });

  it("shares a label selector with a group; membership changes apply at once; lists page correctly", async () => {
    for (const id of ["k-1", "k-2", "k-3"])
      await admin(DeviceService).createDevice({ deviceId: id, device: { labels: { room: "kitchen" }, kind: { case: "led", value: {} } } });
    await admin(DeviceService).createDevice({ deviceId: "k-other", device: { labels: { room: "garage" }, kind: { case: "led", value: {} } } });
    await admin(UserService).createGroup({ groupId: "kitchen-staff" });
    await admin(UserService).addGroupMember({ group: "groups/kitchen-staff", user: "users/sam" });
    const grant = await admin(ShareService).createGrant({
      grant: { principal: "groups/kitchen-staff", target: { case: "selector", value: 'labels.room = "kitchen"' }, role: Grant_Role.OPERATOR },
    });
    // Page size 1: every visible device exactly once, none of the others.
    const names: string[] = [];
    let pageToken = "";
    do {
      const page = await as("sam", DeviceService).listDevices({ pageSize: 1, pageToken });
      names.push(...page.devices.map((d) => d.name));
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    expect(names).toEqual(["devices/k-1", "devices/k-2", "devices/k-3", "devices/sam-coffee"]);
    await as("sam", TaskService).createTask({ parent: "devices/k-1", task: power });
    await expect(as("sam", TaskService).createTask({ parent: "devices/k-other", task: power })).rejects.toMatchObject({ code: Code.NotFound });
    // Only admins share selectors.
    await expect(
      as("olivia", ShareService).createGrant({
        grant: { principal: "users/sam", target: { case: "selector", value: 'labels.room = "garage"' }, role: Grant_Role.VIEWER },
      }),
    ).rejects.toMatchObject({ code: Code.PermissionDenied });

    await admin(UserService).removeGroupMember({ group: "groups/kitchen-staff", user: "users/sam" });
    expect((await as("sam", DeviceService).listDevices({})).devices.map((d) => d.name)).toEqual(["devices/sam-coffee"]);
    await admin(ShareService).deleteGrant({ name: grant.name });
  });

  it("scopes rules by their target device; selector rules are admin-only", async () => {
    const rule = (target: { case: "device"; value: string } | { case: "selector"; value: { kind: number; labels: Record<string, string> } }) => ({
      rule: { trigger: { case: "cron" as const, value: { expression: "0 0 3 * * *", timeZone: "UTC" } }, target, command: power.command },
    });
    await expect(as("vera", RuleService).createRule(rule({ case: "device", value: "devices/olivia-led" }))).rejects.toMatchObject({
      code: Code.PermissionDenied,
    });
    const created = await as("oscar", RuleService).createRule(rule({ case: "device", value: "devices/olivia-led" }));
    expect((await as("vera", RuleService).getRule({ name: created.name })).name).toBe(created.name);
    await expect(as("vera", RuleService).pauseRule({ name: created.name })).rejects.toMatchObject({ code: Code.PermissionDenied });
    await expect(as("sam", RuleService).getRule({ name: created.name })).rejects.toMatchObject({ code: Code.NotFound });
    expect((await as("sam", RuleService).listRules({})).rules).toEqual([]);
    expect((await as("vera", RuleService).listRules({})).rules.map((r) => r.name)).toEqual([created.name]);
    // A rule on a device sam cannot see reads as a device that does not exist.
    await expect(as("sam", RuleService).createRule(rule({ case: "device", value: "devices/olivia-led" }))).rejects.toMatchObject({
      code: Code.InvalidArgument,
    });
    await expect(as("oscar", RuleService).createRule(rule({ case: "selector", value: { kind: 1, labels: { room: "hall" } } }))).rejects.toMatchObject({
      code: Code.PermissionDenied,
    });
  });

  it("creating a device for someone else needs an admin; the owner can delete", async () => {
    await expect(
      as("oscar", DeviceService).createDevice({ deviceId: "for-vera", device: { owner: "vera", kind: { case: "led", value: {} } } }),
    ).rejects.toMatchObject({ code: Code.PermissionDenied });
    const d = await admin(DeviceService).createDevice({ deviceId: "for-vera", device: { owner: "vera", kind: { case: "led", value: {} } } });
    expect(d.owner).toBe("vera");
    await as("vera", DeviceService).deleteDevice({ name: "devices/for-vera" });
    await expect(admin(DeviceService).getDevice({ name: "devices/for-vera" })).rejects.toMatchObject({ code: Code.NotFound });
  });

  it("users and groups are admin business", async () => {
    await expect(as("olivia", UserService).createUser({ userId: "mallory", password: "password-123" })).rejects.toMatchObject({ code: Code.PermissionDenied });
    await expect(as("olivia", UserService).listUsers({})).rejects.toMatchObject({ code: Code.PermissionDenied });
    await expect(as("olivia", UserService).getUser({ name: "users/oscar" })).rejects.toMatchObject({ code: Code.PermissionDenied });
    expect((await as("olivia", UserService).getUser({ name: "users/me" })).name).toBe("users/olivia");
  });
  it("fleet jobs are admin business: a device's owner can neither create nor list them", async () => {
    const job = { command: power.command, target: { case: "devices" as const, value: { devices: ["devices/olivia-led"] } } };
    const refused = await as("olivia", JobService)
      .createJob({ jobId: "olivia-job", job })
      .catch((e: unknown) => e);
    expect(ConnectError.from(refused).code).toBe(Code.PermissionDenied);
    expect(
      ConnectError.from(
        await as("olivia", JobService)
          .listJobs({})
          .catch((e: unknown) => e),
      ).code,
    ).toBe(Code.PermissionDenied);
    await admin(JobService).createJob({ jobId: "admin-job", job });
    expect((await admin(JobService).getJob({ name: "jobs/admin-job" })).name).toBe("jobs/admin-job");
    expect(
      ConnectError.from(
        await as("olivia", JobService)
          .getJob({ name: "jobs/admin-job" })
          .catch((e: unknown) => e),
      ).code,
    ).toBe(Code.PermissionDenied);
  });
});
