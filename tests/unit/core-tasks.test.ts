import { create } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UplinkSchema } from "../../gen/tether/device/v1/uplink_pb.js";
import { CreateDeviceRequestSchema } from "../../gen/tether/v1/device_service_pb.js";
import { Task_State } from "../../gen/tether/v1/task_pb.js";
import { CreateTaskRequestSchema } from "../../gen/tether/v1/task_service_pb.js";
import { CommandSchema } from "../../gen/tether/v1/command_pb.js";
import { FULL_ACCESS } from "../../src/core/access/access.js";
import type { RuleRecord } from "../../src/core/rules/rule-record.js";
import type { Sql } from "../../src/store/database.js";
import { planTasks } from "../../src/store/rule-fire-steps.js";
import { withTransaction } from "../../src/store/transaction.js";
import { type CoreHarness, until, wireCore } from "../helpers/core-harness.js";

/**
 * The task path through core alone (task service, dispatcher, lifecycle, uplink processor) over
 * PGlite with a recording link: what is sent, in which order, and what the device's word changes.
 */
describe("core task path, no network", () => {
  let core: CoreHarness;
  beforeAll(async () => {
    core = await wireCore();
  });
  afterAll(() => core?.close());

  const up = (deviceId: string, body: Parameters<typeof create<typeof UplinkSchema>>[1]) =>
    core.uplink.process({ kind: "uplink", deviceId, uplink: create(UplinkSchema, body) });
  const state = async (name: string) => (await core.tasks.getTask(FULL_ACCESS, name)).state;
  const tasksSentTo = (id: string) => core.link.to(id).filter((d) => d.body.case === "task");

  async function device(id: string): Promise<void> {
    await core.devices.createDevice(FULL_ACCESS, create(CreateDeviceRequestSchema, { deviceId: id, device: { kind: { case: "led", value: {} } } }));
  }
  async function task(id: string, brightness: number): Promise<string> {
    const t = await core.tasks.createTask(
      FULL_ACCESS,
      create(CreateTaskRequestSchema, {
        parent: `devices/${id}`,
        task: { command: { kind: { case: "led", value: { action: { case: "setBrightness", value: brightness } } } } },
      }),
    );
    return t.name;
  }

  it("keeps a task for an offline device QUEUED, then sends desired state and the tasks in order when it connects", async () => {
    await device("lamp-1");
    const first = await task("lamp-1", 10);
    const second = await task("lamp-1", 20);
    expect(await state(first)).toBe(Task_State.QUEUED);
    expect(tasksSentTo("lamp-1")).toHaveLength(0);

    await core.uplink.process({ kind: "presence", deviceId: "lamp-1", online: true });
    const sent = await until(() => tasksSentTo("lamp-1").length >= 2 && tasksSentTo("lamp-1"), "both tasks sent");
    expect(sent.map((d) => (d.body.value as { task: string }).task)).toEqual([first, second]);
    // Desired state goes before any task on (re)connect.
    const kinds = core.link.to("lamp-1").map((d) => d.body.case);
    expect(kinds.indexOf("desiredState")).toBeLessThan(kinds.indexOf("task"));
    expect(await state(first)).toBe(Task_State.SENT);
  });

  it("moves a task through ack and result to SUCCEEDED, and a duplicate result changes nothing", async () => {
    const name = await task("lamp-1", 30);
    const sent = await until(() => tasksSentTo("lamp-1").find((d) => (d.body.value as { task: string }).task === name), "task sent");
    const taskId = (sent.body.value as { taskId: string }).taskId;
    await up("lamp-1", { messageId: "m1", body: { case: "ack", value: { taskId, attempt: 1 } } });
    expect(await state(name)).toBe(Task_State.DELIVERED);
    await up("lamp-1", {
      messageId: "m2",
      body: { case: "result", value: { taskId, outcome: { case: "success", value: { kind: { case: "led", value: {} } } } } },
    });
    expect(await state(name)).toBe(Task_State.SUCCEEDED);
    await up("lamp-1", { messageId: "m3", body: { case: "result", value: { taskId, outcome: { case: "failed", value: { code: "LATE", message: "late" } } } } });
    expect(await state(name)).toBe(Task_State.SUCCEEDED);
  });

  it("drops a device's word on another device's task, and reported state of another product", async () => {
    await device("lamp-2");
    const name = await task("lamp-1", 40);
    const sent = await until(() => tasksSentTo("lamp-1").find((d) => (d.body.value as { task: string }).task === name), "task sent");
    const taskId = (sent.body.value as { taskId: string }).taskId;
    await up("lamp-2", { messageId: "x1", body: { case: "result", value: { taskId, outcome: { case: "success", value: {} } } } });
    expect(await state(name)).toBe(Task_State.SENT);
    expect(core.counters.get("tether_uplink_dropped_total", { reason: "foreign_task" })).toBe(1);

    await up("lamp-2", { messageId: "x2", body: { case: "state", value: { version: 1n, kind: { case: "thermostat", value: { temperatureCelsius: 20 } } } } });
    expect(core.counters.get("tether_uplink_dropped_total", { reason: "wrong_product" })).toBe(1);
  });
});

/**
 * One task intake: CreateTask and a rule firing decide with the same admission under the same
 * device locks (the store's lockIntakeDevices), so the cap, its message and idempotency agree.
 */
describe("one task intake, no network", () => {
  let core: CoreHarness;
  beforeAll(async () => {
    core = await wireCore();
  });
  afterAll(() => core?.close());

  const power = (on: boolean) => ({ kind: { case: "led" as const, value: { action: { case: "setPower" as const, value: on } } } });
  const createTask = (id: string, on: boolean, requestId = "") =>
    core.tasks.createTask(FULL_ACCESS, create(CreateTaskRequestSchema, { parent: `devices/${id}`, requestId, task: { command: power(on) } }));
  async function device(id: string, maxPendingTasks: number): Promise<void> {
    await core.devices.createDevice(
      FULL_ACCESS,
      create(CreateDeviceRequestSchema, { deviceId: id, device: { kind: { case: "led", value: {} }, deliveryPolicy: { maxPendingTasks } } }),
    );
  }
  function rule(id: string): RuleRecord {
    const now = core.clock.now();
    return {
      id,
      uid: `${id}-0000-uid`,
      displayName: id,
      paused: false,
      creator: "services/test",
      createTime: now,
      updateTime: now,
      revision: 1,
      trigger: { kind: "cron", expression: "* * * * *", timeZone: "UTC" },
      target: { kind: "device", deviceId: "x" } as RuleRecord["target"],
      command: create(CommandSchema, power(true)),
      taskTtlMs: 60_000,
      taskPriority: 5,
      misfirePolicy: "fire_once",
    };
  }
  const fire = (items: Array<{ rule: RuleRecord; deviceIds: string[] }>) =>
    withTransaction(core.sql, (tx) =>
      planTasks(
        tx as unknown as Sql,
        items.map((i) => ({ ...i, occurrence: core.clock.now() })),
        core.clock.now(),
      ),
    );

  it("announces a created task on the task feed, and a repeated request id creates nothing", async () => {
    await device("cap-1", 2);
    const published: string[] = [];
    const stop = core.taskFeed.subscribe((t) => published.push(t.name));
    const first = await createTask("cap-1", true, "req-1");
    const again = await createTask("cap-1", true, "req-1");
    stop();
    expect(again.name).toBe(first.name);
    expect(published).toEqual([first.name]);
    await expect(createTask("cap-1", false, "req-1")).rejects.toThrow(/request_id "req-1" but a different command on devices\/cap-1/);
  });

  it("holds a device's cap for CreateTask and for rule firings with one message, and a retry still gets its task", async () => {
    await createTask("cap-1", false);
    const busy = "devices/cap-1 already has 2 open tasks (its delivery_policy.max_pending_tasks is 2)";
    await expect(createTask("cap-1", true)).rejects.toThrow(busy);
    expect((await createTask("cap-1", true, "req-1")).name).toMatch(/^devices\/cap-1\/tasks\//);
    const planned = await fire([{ rule: rule("r1"), deviceIds: ["cap-1"] }]);
    expect(planned.get("r1")).toEqual({ targets: [{ deviceId: "cap-1", error: busy }], tasks: [] });
  });

  it("shares a device's room between the rules of one firing batch, and names a missing device", async () => {
    await device("cap-2", 1);
    const planned = await fire([
      { rule: rule("r2"), deviceIds: ["cap-2", "nowhere"] },
      { rule: rule("r3"), deviceIds: ["cap-2"] },
    ]);
    expect(planned.get("r2")!.tasks.map((t) => t.deviceId)).toEqual(["cap-2"]);
    expect(planned.get("r2")!.targets[1]).toEqual({ deviceId: "nowhere", error: "devices/nowhere does not exist" });
    expect(planned.get("r3")!.targets).toEqual([
      { deviceId: "cap-2", error: "devices/cap-2 already has 1 open tasks (its delivery_policy.max_pending_tasks is 1)" },
    ]);
  });
});
