import { create } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TaskAckSchema, TaskProgressSchema, TaskResultSchema, UplinkSchema } from "../../gen/tether/device/v1/uplink_pb.js";
import { DeliveryPolicy_Mode } from "../../gen/tether/v1/device_pb.js";
import { CreateDeviceRequestSchema } from "../../gen/tether/v1/device_service_pb.js";
import { CreateTaskRequestSchema } from "../../gen/tether/v1/task_service_pb.js";
import { FULL_ACCESS } from "../../src/core/access/access.js";
import { AlreadyExistsError, NotFoundError, ResourceExhaustedError } from "../../src/core/errors.js";
import type { NewTask } from "../../src/core/ports/task-repository.js";
import { sendAtCreate } from "../../src/core/tasks/delivery-plan.js";
import { ackWord, applyWord, type DeviceWord, fastGuard, progressWord, resultWord } from "../../src/core/tasks/device-word.js";
import type { TaskRecord } from "../../src/core/tasks/task-record.js";
import { buildTask } from "../../src/core/tasks/task-request.js";
import { State } from "../../src/core/tasks/task-state.js";
import { type CoreHarness, until, wireCore } from "../helpers/core-harness.js";

const brightness = (value: number) => ({ kind: { case: "led" as const, value: { action: { case: "setBrightness" as const, value } } } });

describe("sendAtCreate (which new tasks go out in their creating transaction)", () => {
  const idle = { online: true, mode: DeliveryPolicy_Mode.BURST, queued: 0, sent: 0, delivered: 0, running: 0 };
  it("sends every new task of an idle burst device, highest priority first", () => {
    expect(sendAtCreate(idle, [5, 9, 1])).toEqual({ send: [true, true, true], order: [1, 0, 2] });
  });
  it("sends nothing while the device has queued tasks (a new task never overtakes one), or is offline", () => {
    expect(sendAtCreate({ ...idle, queued: 1 }, [9]).send).toEqual([false]);
    expect(sendAtCreate({ ...idle, online: false }, [5, 5]).send).toEqual([false, false]);
  });
  it("gives a one-at-a-time device the most urgent new task and queues the rest behind it", () => {
    const one = { ...idle, mode: DeliveryPolicy_Mode.ONE_UNTIL_COMPLETED };
    expect(sendAtCreate(one, [1, 9, 5]).send).toEqual([false, true, false]);
    expect(sendAtCreate({ ...one, running: 1 }, [9]).send).toEqual([false]);
  });
});

describe("fastGuard (the set-based statement's guard, derived from the state machine)", () => {
  it("lets an ack apply only to a SENT task, progress and results to any task out on the device", () => {
    expect(fastGuard({ type: "ack" })).toEqual({ from: [State.SENT], to: State.DELIVERED });
    expect(fastGuard({ type: "progress" })).toEqual({ from: [State.SENT, State.DELIVERED, State.RUNNING], to: State.RUNNING });
    expect(fastGuard({ type: "result", outcome: "rejected" })).toEqual({ from: [State.SENT, State.DELIVERED, State.RUNNING], to: State.REJECTED });
  });
});

/** The group-commit statements over PGlite, driven the way the task path drives them. */
describe("group commit on the task path, no network", () => {
  let core: CoreHarness;
  beforeAll(async () => {
    core = await wireCore();
  });
  afterAll(() => core?.close());

  async function device(id: string, opts: { online?: boolean; mode?: DeliveryPolicy_Mode; maxPendingTasks?: number } = {}): Promise<void> {
    await core.devices.createDevice(
      FULL_ACCESS,
      create(CreateDeviceRequestSchema, {
        deviceId: id,
        device: { kind: { case: "led", value: {} }, deliveryPolicy: { mode: opts.mode, maxPendingTasks: opts.maxPendingTasks } },
      }),
    );
    if (opts.online) await core.stores.devices.setPresence(id, { online: true }, core.clock.now());
  }
  async function newTask(deviceId: string, value: number, extra: { requestId?: string; priority?: number } = {}): Promise<NewTask> {
    const stored = (await core.stores.devices.get(deviceId)) ?? (await core.stores.devices.get("gc-any"));
    return buildTask(
      create(CreateTaskRequestSchema, {
        parent: `devices/${deviceId}`,
        requestId: extra.requestId,
        task: { command: brightness(value), priority: extra.priority },
      }),
      stored!.device,
      deviceId,
      core.clock.now(),
      "users/admin",
    );
  }
  const createTask = (deviceId: string, value: number, priority?: number) =>
    core.tasks.createTask(FULL_ACCESS, create(CreateTaskRequestSchema, { parent: `devices/${deviceId}`, task: { command: brightness(value), priority } }));
  const sentTasks = (id: string) =>
    core.link
      .to(id)
      .filter((d) => d.body.case === "task")
      .map((d) => (d.body.value as { task: string }).task);
  const stateOf = async (name: string) => (await core.tasks.getTask(FULL_ACCESS, name)).state;

  it("decides each task of a batch on its own: sent, queued, replayed, refused — one refusal fails no neighbour", async () => {
    await device("gc-any");
    await device("gc-on", { online: true });
    await device("gc-off");
    await device("gc-full", { maxPendingTasks: 1 });
    const items = [
      await newTask("gc-on", 1),
      await newTask("gc-off", 2),
      await newTask("gc-gone", 3),
      await newTask("gc-full", 4),
      await newTask("gc-full", 5),
      await newTask("gc-on", 6, { requestId: "same" }),
      await newTask("gc-on", 6, { requestId: "same" }),
      await newTask("gc-on", 7, { requestId: "same" }),
    ];
    const out = await core.stores.tasks.createMany(items, () => core.clock.now());
    const view = out.map((o) => (o instanceof Error ? o.constructor.name : `${State[o.task.state]}${o.created ? "" : " (replay)"}`));
    expect(view).toEqual(["SENT", "QUEUED", "NotFoundError", "QUEUED", "ResourceExhaustedError", "SENT", "SENT (replay)", "AlreadyExistsError"]);
    expect(out[2]).toBeInstanceOf(NotFoundError);
    expect(out[4]).toBeInstanceOf(ResourceExhaustedError);
    expect(out[7]).toBeInstanceOf(AlreadyExistsError);
    const [sent, , , , , keyed, replay] = out as { task: TaskRecord }[];
    expect(replay!.task.id).toBe(keyed!.task.id);
    // Created SENT: first attempt claimed, send time set, a place in the send order.
    expect(sent!.task).toMatchObject({ attempt: 1, sendTime: core.clock.now() });
    const [row] = await core.sql`SELECT count(*)::int AS n FROM tasks WHERE device_id IN ('gc-on', 'gc-off', 'gc-full')`;
    expect(row!.n).toBe(4);
  });

  it("a batch with an item the statement cannot take (not a new task) refuses it alone", async () => {
    const good = await newTask("gc-off", 8);
    const bad = { ...(await newTask("gc-off", 9)), state: State.SENT };
    const out = await core.stores.tasks.createMany([good, bad], () => core.clock.now());
    expect(out[0]).toMatchObject({ created: true });
    expect(out[1]).toBeInstanceOf(Error);
  });

  it("sends queued tasks highest priority first, in creation order within a priority", async () => {
    await device("prio-1");
    const made = [];
    for (const [v, p] of [
      [10, 5],
      [20, 9],
      [30, 1],
      [40, 9],
      [50, undefined],
    ] as const)
      made.push((await createTask("prio-1", v, p)).name);
    expect((await core.tasks.getTask(FULL_ACCESS, made[4]!)).priority).toBe(5);
    await core.uplink.process({ kind: "presence", deviceId: "prio-1", online: true });
    await until(() => sentTasks("prio-1").length >= 5, "all five sent");
    expect(sentTasks("prio-1")).toEqual([made[1], made[3], made[0], made[4], made[2]]);
  });

  it("a priority never overtakes what was sent: a one-at-a-time device finishes its task first, and resends keep send order", async () => {
    await device("prio-2", { online: true, mode: DeliveryPolicy_Mode.ONE_UNTIL_COMPLETED });
    const low = (await createTask("prio-2", 1, 0)).name;
    await until(() => sentTasks("prio-2").length === 1, "the low-priority task sent at once");
    const urgent = (await createTask("prio-2", 2, 9)).name;
    expect(await stateOf(urgent)).toBe(State.QUEUED);
    const lowId = low.split("/").at(-1)!;
    await core.uplink.process({
      kind: "uplink",
      deviceId: "prio-2",
      uplink: create(UplinkSchema, { body: { case: "result", value: { taskId: lowId, outcome: { case: "success", value: {} } } } }),
    });
    await until(() => sentTasks("prio-2").length === 2, "the urgent task sent after the first ended");
    expect(sentTasks("prio-2")).toEqual([low, urgent]);

    // Burst: a low and then an urgent task both out; on reconnect they go again in send order.
    await device("prio-3", { online: true });
    const a = (await createTask("prio-3", 1, 0)).name;
    const b = (await createTask("prio-3", 2, 9)).name;
    await until(() => sentTasks("prio-3").length === 2, "both sent");
    const before = core.link.sent.length;
    await core.dispatcher.onHello("prio-3");
    const again = core.link.sent
      .slice(before)
      .filter((s) => s.deviceId === "prio-3" && s.message.body.case === "task")
      .map((s) => (s.message.body.value as { task: string }).task);
    expect(again).toEqual([a, b]);
  });

  it("applies a batch of device words set-based: stale, duplicate and foreign words change nothing, the others commit", async () => {
    await device("gc-w1", { online: true });
    await device("gc-w2", { online: true });
    const t = async (id: string) => (await core.stores.tasks.createMany([await newTask(id, 1)], () => core.clock.now()))[0] as { task: TaskRecord };
    const a = (await t("gc-w1")).task;
    const b = (await t("gc-w1")).task;
    const c = (await t("gc-w2")).task;
    const ended = (await t("gc-w2")).task;
    await core.stores.tasks.applyWords(
      [resultWord("gc-w2", create(TaskResultSchema, { taskId: ended.id, outcome: { case: "success", value: {} } }))!],
      core.clock.now(),
    );
    const words: DeviceWord[] = [
      ackWord("gc-w1", create(TaskAckSchema, { taskId: a.id, attempt: 1 })),
      progressWord("gc-w1", create(TaskProgressSchema, { taskId: b.id, percent: 150, message: "half" })),
      ackWord("gc-w1", create(TaskAckSchema, { taskId: c.id, attempt: 1 })), // c is gc-w2's: foreign
      resultWord("gc-w2", create(TaskResultSchema, { taskId: ended.id, outcome: { case: "failed", value: { code: "LATE", message: "", details: {} } } }))!, // already ended
    ];
    const out = await core.stores.tasks.applyWords(words, core.clock.now());
    expect(out.map((o) => o && State[o.task.state])).toEqual(["DELIVERED", "RUNNING", undefined, undefined]);
    expect(out[1]!.task.progress).toEqual({ percent: 100, message: "half" });
    // A duplicate ack of a (now DELIVERED) is stale: refused, nothing changes.
    const again = await core.stores.tasks.applyWords([ackWord("gc-w1", create(TaskAckSchema, { taskId: a.id, attempt: 1 }))], core.clock.now());
    expect(again).toEqual([undefined]);
    expect((await core.stores.tasks.get(c.id))!.state).toBe(State.SENT);
    expect((await core.stores.tasks.get(ended.id))!.state).toBe(State.SUCCEEDED);
  });

  it("writes exactly what the lifecycle's path writes, for every kind of word", async () => {
    await device("gc-eq", { online: true });
    const fresh = async () => ((await core.stores.tasks.createMany([await newTask("gc-eq", 1)], () => core.clock.now()))[0] as { task: TaskRecord }).task;
    const cases: [string, (id: string) => DeviceWord][] = [
      ["ack", (id) => ackWord("gc-eq", create(TaskAckSchema, { taskId: id, attempt: 1 }))],
      ["progress", (id) => progressWord("gc-eq", create(TaskProgressSchema, { taskId: id, percent: 40, message: "m".repeat(300) }))],
      [
        "success",
        (id) => resultWord("gc-eq", create(TaskResultSchema, { taskId: id, outcome: { case: "success", value: { kind: { case: "led", value: {} } } } }))!,
      ],
      ["rejected", (id) => resultWord("gc-eq", create(TaskResultSchema, { taskId: id, outcome: { case: "rejected", value: { reason: "busy" } } }))!],
      [
        "failed",
        (id) =>
          resultWord(
            "gc-eq",
            create(TaskResultSchema, { taskId: id, outcome: { case: "failed", value: { code: "E1", message: "boom", details: { a: "b" } } } }),
          )!,
      ],
    ];
    const comparable = (t: TaskRecord) => {
      const { id: _i, sequence: _s, revision: _r, ...rest } = t;
      return rest;
    };
    for (const [label, word] of cases) {
      core.clock.advance(1000);
      const fast = await fresh();
      const slow = await fresh();
      const now = core.clock.now();
      const [applied] = await core.stores.tasks.applyWords([word(fast.id)], now);
      const w = word(slow.id);
      const r = await core.lifecycle.apply(slow, w.event, (next, at) => applyWord(next, w, at));
      expect(applied, label).toBeDefined();
      expect(comparable((await core.stores.tasks.get(fast.id))!), label).toEqual(comparable(r.task));
    }
  });
});
