import { create, toBinary } from "@bufbuild/protobuf";
import { Code, type ConnectError } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { Recipe, CupSize } from "../../gen/tether/v1/coffee_machine_pb.js";
import { DeliveryPolicy_Mode } from "../../gen/tether/v1/device_pb.js";
import { LedMode } from "../../gen/tether/v1/led_pb.js";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { type Task, Task_State as State } from "../../gen/tether/v1/task_pb.js";
import { CreateTaskRequest_WaitFor as WaitFor, TaskService } from "../../gen/tether/v1/task_service_pb.js";
import { JobService } from "../../gen/tether/v1/job_service_pb.js";
import { UplinkSchema } from "../../gen/tether/device/v1/uplink_pb.js";
import { devicesCommand } from "../../src/cli/devices.js";
import { jobsCommand } from "../../src/cli/jobs.js";
import { tasksCommand } from "../../src/cli/tasks.js";
import { uplinkTopic } from "../../src/protocol/topics.js";
import { coffeeSim, eventually, ledSim, rawDevice } from "../helpers/devices.js";
import { connectClient, grpcJsClient, startTestStack, type TestStack } from "../helpers/stack.js";

let s: TestStack;
beforeAll(async () => {
  s = await startTestStack({ TETHER_TASK_SWEEP_MS: "100", TETHER_TASK_ACK_TIMEOUT_MS: "800" });
});
afterAll(async () => {
  await s?.cleanup();
});

const devices = () => connectClient(s, DeviceService, "connect");
const tasks = () => connectClient(s, TaskService, "connect");
const coffee = (id: string, policy?: { mode: DeliveryPolicy_Mode; maxPendingTasks?: number }) =>
  devices().createDevice({ deviceId: id, device: { deliveryPolicy: policy, kind: { case: "coffeeMachine", value: {} } } });
const led = (id: string) => devices().createDevice({ deviceId: id, device: { kind: { case: "led", value: {} } } });
const brew = (recipe = Recipe.ESPRESSO) => ({
  command: { kind: { case: "coffeeMachine" as const, value: { action: { case: "brew" as const, value: { recipe, size: CupSize.SMALL } } } } },
});
const brightness = (n: number) => ({ command: { kind: { case: "led" as const, value: { action: { case: "setBrightness" as const, value: n } } } } });
const get = (name: string) => tasks().getTask({ name });
const stateOf = async (name: string) => (await get(name)).state;

describe("the whole round trip", () => {
  it("create → sent → ack → progress → succeeded, watched live by a grpc-js client", async () => {
    await coffee("rt-coffee");
    const { device } = await coffeeSim(s, "rt-coffee", { brewMs: 600 });
    const gjs = grpcJsClient(s, TaskService);
    try {
      const stream = gjs.serverStream("watchTasks", { name: "devices/rt-coffee" });
      const seen: Task[] = [];
      const done = new Promise<void>((resolve, reject) => {
        stream.on("data", (r: { task?: Task }) => {
          seen.push(r.task!);
          if (r.task!.state === State.SUCCEEDED) resolve();
        });
        stream.on("error", (e: grpc.ServiceError) => (e.code === grpc.status.CANCELLED ? undefined : reject(e)));
      });
      await new Promise((r) => setTimeout(r, 100)); // the stream is open server-side
      const created = await gjs.unary("createTask", { parent: "devices/rt-coffee", task: brew() });
      expect(created.state).toBe(State.QUEUED);
      expect(created.name).toMatch(/^devices\/rt-coffee\/tasks\/[0-9a-f-]{36}$/);
      await done;
      stream.cancel();
      const states = seen.filter((t) => t.name === created.name).map((t) => t.state);
      // Every stage, in order (RUNNING repeats with each progress report).
      const firsts = states.filter((st, i) => states.indexOf(st) === i);
      expect(firsts).toEqual([State.QUEUED, State.SENT, State.DELIVERED, State.RUNNING, State.SUCCEEDED]);
      const final = seen.at(-1)!;
      expect(final.result?.kind.case).toBe("coffeeMachine");
      expect(final.attempt).toBe(1);
      expect(final.stateReason).not.toBe("");
      expect(seen.some((t) => (t.progress?.percent ?? 0) > 0 && t.state === State.RUNNING)).toBe(true);
      expect(device.executions.get(created.name.split("/")[3]!)).toBe(1);
    } finally {
      gjs.close();
      await device.close();
    }
  });

  it("waits for the result when asked, and answers DEADLINE_EXCEEDED while the task lives on", async () => {
    await coffee("wait-coffee");
    const { device } = await coffeeSim(s, "wait-coffee", { brewMs: 1200 });
    try {
      const quick = await tasks().createTask({ parent: "devices/wait-coffee", task: brew(), waitFor: WaitFor.ACKNOWLEDGED });
      expect([State.DELIVERED, State.RUNNING, State.SUCCEEDED]).toContain(quick.state);
      const full = await tasks().createTask({ parent: "devices/wait-coffee", task: brew(), waitFor: WaitFor.COMPLETED, waitTimeout: { seconds: 20n } });
      expect(full.state).toBe(State.SUCCEEDED);
      const err = await tasks()
        .createTask({ parent: "devices/wait-coffee", task: brew(), waitFor: WaitFor.COMPLETED, waitTimeout: { nanos: 200_000_000 }, requestId: "slow-1" })
        .then(
          () => undefined,
          (e: unknown) => e as ConnectError,
        );
      expect(err?.code).toBe(Code.DeadlineExceeded);
      const same = await tasks().createTask({ parent: "devices/wait-coffee", task: brew(), requestId: "slow-1" });
      await eventually(async () => (await stateOf(same.name)) === State.SUCCEEDED, 10_000, "the waited-for task to finish");
    } finally {
      await device.close();
    }
  });
});

describe("offline devices", () => {
  it("queues tasks and delivers them in order when the device connects", async () => {
    await led("off-led");
    const created: Task[] = [];
    for (const n of [10, 20, 30, 40]) created.push(await tasks().createTask({ parent: "devices/off-led", task: brightness(n) }));
    await new Promise((r) => setTimeout(r, 300));
    for (const t of created) expect(await stateOf(t.name)).toBe(State.QUEUED);
    const { device, sim } = await ledSim(s, "off-led");
    try {
      await eventually(
        async () => (await Promise.all(created.map((t) => stateOf(t.name)))).every((st) => st === State.SUCCEEDED),
        8000,
        "all tasks to succeed",
      );
      // executions is in execution order.
      expect([...device.executions.keys()]).toEqual(created.map((t) => t.name.split("/")[3]));
      expect(sim.reported().kind).toMatchObject({ case: "led", value: { brightness: 40 } });
      // The reported state reached the registry.
      await eventually(
        async () => {
          const d = await devices().getDevice({ name: "devices/off-led" });
          return d.kind.case === "led" && d.kind.value.reported?.brightness === 40 && d.connectivity?.online;
        },
        5000,
        "reported state",
      );
    } finally {
      await device.close();
    }
    await eventually(async () => !(await devices().getDevice({ name: "devices/off-led" })).connectivity?.online, 5000, "offline presence");
  });

  it("lets a device pull its current task, oldest first", async () => {
    await led("pull-led");
    const a = await tasks().createTask({ parent: "devices/pull-led", task: brightness(1) });
    const b = await tasks().createTask({ parent: "devices/pull-led", task: brightness(2) });
    const dev = await rawDevice(s, "pull-led");
    try {
      await dev.send({ case: "currentTaskQuery", value: {} });
      const [first] = await dev.waitFor(1);
      expect(first!.body.case === "task" && first!.body.value.task).toBe(a.name);
      await dev.send({ case: "ack", value: { taskId: a.name.split("/")[3]!, attempt: 1 } });
      await dev.send({ case: "result", value: { taskId: a.name.split("/")[3]!, outcome: { case: "success", value: {} } } });
      await eventually(async () => (await stateOf(a.name)) === State.SUCCEEDED);
      await dev.send({ case: "currentTaskQuery", value: {} });
      const second = (await dev.waitFor(2))[1]!;
      expect(second.body.case === "task" && second.body.value.task).toBe(b.name);
      await tasks().cancelTask({ name: b.name });
      await dev.send({ case: "currentTaskQuery", value: {} });
      const msgs = await dev.waitFor(4);
      expect(msgs.map((m) => m.body.case)).toContain("noPendingTask");
    } finally {
      await dev.close();
    }
  });
});

describe("expiry and cancellation", () => {
  it("expires a task whose TTL passes before delivery, and never sends it", async () => {
    await led("ttl-led");
    const t = await tasks().createTask({ parent: "devices/ttl-led", task: brightness(5), ttl: { seconds: 1n } });
    await eventually(async () => (await stateOf(t.name)) === State.EXPIRED, 5000, "expiry");
    expect((await get(t.name)).stateReason).toBe("deadline passed before delivery");
    const { device } = await ledSim(s, "ttl-led");
    try {
      await new Promise((r) => setTimeout(r, 500));
      expect(device.executions.size).toBe(0);
    } finally {
      await device.close();
    }
  });

  it("cancels before send (never delivered) and after send (the device stops; its late result changes nothing)", async () => {
    await coffee("cancel-coffee");
    const early = await tasks().createTask({ parent: "devices/cancel-coffee", task: brew() });
    const canceled = await tasks().cancelTask({ name: early.name, reason: "changed my mind" });
    expect(canceled.state).toBe(State.CANCELED);
    expect(canceled.stateReason).toBe("canceled: changed my mind");
    await expect(tasks().cancelTask({ name: early.name })).rejects.toMatchObject({ code: Code.FailedPrecondition });

    const { device } = await coffeeSim(s, "cancel-coffee", { brewMs: 3000 });
    try {
      const late = await tasks().createTask({ parent: "devices/cancel-coffee", task: brew() });
      await eventually(async () => (await stateOf(late.name)) === State.RUNNING, 5000, "running");
      await tasks().cancelTask({ name: late.name });
      // The device aborts and reports "canceled" as a rejection, which arrives after the cancel: late.
      await eventually(async () => (await get(late.name)).lateEventCount >= 1, 5000, "the late rejection");
      expect(await stateOf(late.name)).toBe(State.CANCELED);
      expect(device.executions.has(early.name.split("/")[3]!)).toBe(false);
    } finally {
      await device.close();
    }
  });
});

describe("idempotency and duplicates", () => {
  it("returns the first task for a repeated request_id and refuses a different command under it", async () => {
    await led("idem-led");
    const a = await tasks().createTask({ parent: "devices/idem-led", task: brightness(7), requestId: "req-1" });
    const b = await tasks().createTask({ parent: "devices/idem-led", task: brightness(7), requestId: "req-1" });
    expect(b.name).toBe(a.name);
    await expect(tasks().createTask({ parent: "devices/idem-led", task: brightness(8), requestId: "req-1" })).rejects.toMatchObject({
      code: Code.AlreadyExists,
    });
    const list = await tasks().listTasks({ parent: "devices/idem-led" });
    expect(list.tasks).toHaveLength(1);
  });

  it("records duplicate acks and results as late without changing the outcome", async () => {
    await led("dup-led");
    const t = await tasks().createTask({ parent: "devices/dup-led", task: brightness(9) });
    const id = t.name.split("/")[3]!;
    const dev = await rawDevice(s, "dup-led");
    try {
      await dev.send({ case: "currentTaskQuery", value: {} });
      await dev.waitFor(1);
      for (let i = 0; i < 2; i++) await dev.send({ case: "ack", value: { taskId: id, attempt: 1 } });
      await dev.send({ case: "result", value: { taskId: id, outcome: { case: "success", value: {} } } });
      await dev.send({ case: "result", value: { taskId: id, outcome: { case: "failed", value: { code: "LATE" } } } });
      await eventually(async () => (await get(t.name)).lateEventCount === 2, 5000, "two late events");
      const final = await get(t.name);
      expect(final.state).toBe(State.SUCCEEDED);
      expect(final.error).toBeUndefined();
    } finally {
      await dev.close();
    }
  });
});

describe("delivery policy and limits", () => {
  it("sends one task at a time until completed, and caps the queue", async () => {
    await coffee("one-coffee", { mode: DeliveryPolicy_Mode.ONE_UNTIL_COMPLETED, maxPendingTasks: 3 });
    const made: Task[] = [];
    for (let i = 0; i < 3; i++) made.push(await tasks().createTask({ parent: "devices/one-coffee", task: brew() }));
    await expect(tasks().createTask({ parent: "devices/one-coffee", task: brew() })).rejects.toMatchObject({ code: Code.ResourceExhausted });
    const { device } = await coffeeSim(s, "one-coffee", { brewMs: 500 });
    try {
      await eventually(async () => (await stateOf(made[0]!.name)) === State.RUNNING, 5000, "first running");
      expect(await stateOf(made[1]!.name)).toBe(State.QUEUED);
      expect(await stateOf(made[2]!.name)).toBe(State.QUEUED);
      await eventually(async () => (await Promise.all(made.map((t) => stateOf(t.name)))).every((st) => st === State.SUCCEEDED), 10_000, "all done");
      const byDeliver = await Promise.all(made.map((t) => get(t.name)));
      // Each was sent only after the previous one ended.
      for (let i = 1; i < byDeliver.length; i++) {
        expect(Number(byDeliver[i]!.sendTime!.seconds) * 1000 + byDeliver[i]!.sendTime!.nanos / 1e6).toBeGreaterThanOrEqual(
          Number(byDeliver[i - 1]!.endTime!.seconds) * 1000 + byDeliver[i - 1]!.endTime!.nanos / 1e6,
        );
      }
    } finally {
      await device.close();
    }
  });

  it("lists tasks by state, newest first, with stable pages", async () => {
    const list = await tasks().listTasks({ parent: "devices/one-coffee", filter: "state = SUCCEEDED", pageSize: 2 });
    expect(list.tasks).toHaveLength(2);
    const next = await tasks().listTasks({ parent: "devices/one-coffee", filter: "state = SUCCEEDED", pageSize: 2, pageToken: list.nextPageToken });
    expect(next.tasks).toHaveLength(1);
    expect(next.nextPageToken).toBe("");
    const all = [...list.tasks, ...next.tasks].map((t) => Number(t.sequence));
    expect(all).toEqual([...all].sort((a, b) => b - a));
    const everywhere = await tasks().listTasks({ parent: "devices/-", filter: "state = QUEUED OR state = SUCCEEDED", pageSize: 1000 });
    expect(everywhere.tasks.length).toBeGreaterThan(3);
  });
});

describe("bad input", () => {
  const violations = async (p: Promise<unknown>) => {
    const err = (await p.then(
      () => undefined,
      (e: unknown) => e,
    )) as ConnectError;
    expect(err?.code).toBe(Code.InvalidArgument);
    return err.findDetails(BadRequestSchema).flatMap((b) => b.fieldViolations.map((v) => `${v.field}: ${v.description}`));
  };

  it("refuses a command for another product kind, bad values and unknown devices", async () => {
    await led("bad-led");
    expect(await violations(tasks().createTask({ parent: "devices/bad-led", task: brew() }))).toEqual([
      "task.command: devices/bad-led is a led; a coffee_machine command does not apply to it",
    ]);
    expect(await violations(tasks().createTask({ parent: "devices/bad-led", task: brightness(150) }))).toEqual([
      "task.command.led.set_brightness: must be a percentage between 0 and 100",
    ]);
    expect(
      (await violations(tasks().createTask({ parent: "devices/bad-led", task: { maxAttempts: 50 }, ttl: { seconds: 0n, nanos: 5 } }))).map(
        (v) => v.split(":")[0],
      ),
    ).toEqual(["task.command", "ttl", "task.max_attempts"]);
    await expect(tasks().createTask({ parent: "devices/nobody", task: brightness(1) })).rejects.toMatchObject({ code: Code.NotFound });
    expect(await violations(tasks().getTask({ name: "devices/bad-led/tasks/42" }))).toHaveLength(1);
    await expect(tasks().getTask({ name: "devices/bad-led/tasks/00000000-0000-4000-8000-000000000000" })).rejects.toMatchObject({ code: Code.NotFound });
    expect(await violations(tasks().listTasks({ parent: "devices/bad-led", filter: "state = SLEEPING" }))).toHaveLength(1);
  });

  it("drops malformed uplink, unknown and foreign task ids, and keeps working", async () => {
    await led("mal-led");
    await led("victim-led");
    const victim = await tasks().createTask({ parent: "devices/victim-led", task: brightness(3) });
    const dev = await rawDevice(s, "mal-led");
    const before = s.app.counters.snapshot();
    try {
      await dev.publishRaw(uplinkTopic("mal-led"), Buffer.from([0xff, 0xff, 0xff, 0x01]));
      await dev.publishRaw(`${uplinkTopic("mal-led")}/json`, "{not json");
      await dev.send({ case: "result", value: { taskId: "00000000-0000-4000-8000-000000000000", outcome: { case: "success", value: {} } } });
      await dev.send({ case: "result", value: { taskId: victim.name.split("/")[3]!, outcome: { case: "success", value: {} } } });
      const c = s.app.counters;
      await eventually(
        async () => c.get("tether_uplink_dropped_total", { reason: "foreign_task" }) > (before['tether_uplink_dropped_total{reason="foreign_task"}'] ?? 0),
        5000,
        "foreign drop",
      );
      expect(c.get("tether_uplink_dropped_total", { reason: "malformed" })).toBeGreaterThanOrEqual(2);
      expect(c.get("tether_uplink_dropped_total", { reason: "unknown_task" })).toBeGreaterThanOrEqual(1);
      // The other device's task was not touched.
      expect(await stateOf(victim.name)).toBe(State.QUEUED);
      // JSON uplink works for humans.
      const json = JSON.stringify({ messageId: "m1", state: { version: "3", led: { brightness: 77 } } });
      await dev.publishRaw(`${uplinkTopic("mal-led")}/json`, json);
      await eventually(
        async () => {
          const d = await devices().getDevice({ name: "devices/mal-led" });
          return d.kind.case === "led" && d.kind.value.reported?.brightness === 77;
        },
        5000,
        "JSON state report",
      );
    } finally {
      await dev.close();
    }
    // Larger than TETHER_MQTT_MAX_PAYLOAD_BYTES: the embedded broker cuts the connection at the
    // packet's header, before reading the payload, and counts it (tests/integration/mqtt-exhaustion.test.ts measures it).
    const big = await rawDevice(s, "mal-led");
    const cut = new Promise<void>((r) => big.client.once("close", () => r()));
    void big.client.publishAsync(uplinkTopic("mal-led"), Buffer.alloc(300 * 1024, 1), { qos: 1 }).catch(() => undefined);
    await cut;
    expect(s.app.counters.get("tether_mqtt_refused_total", { action: "packet_too_large" })).toBeGreaterThanOrEqual(1);
    await big.close();
    // Speaking for another device: the broker refuses it (and drops the connection), and counts it.
    const spoofer = await rawDevice(s, "mal-led");
    const forged = create(UplinkSchema, {
      messageId: "x",
      body: { case: "result", value: { taskId: victim.name.split("/")[3]!, outcome: { case: "success", value: {} } } },
    });
    // The PUBACK never comes (the broker cuts the connection), so the publish is not awaited.
    void spoofer.client.publishAsync(uplinkTopic("victim-led"), Buffer.from(toBinary(UplinkSchema, forged)), { qos: 1 }).catch(() => undefined);
    await eventually(async () => s.app.counters.get("tether_mqtt_refused_total", { action: "publish" }) >= 1, 5000, "refused publish counted");
    await spoofer.close();
    expect(await stateOf(victim.name)).toBe(State.QUEUED);
  });
});

describe("the CLI speaks the products' words", () => {
  const flags = () => ["--address", s.baseUrl, "--certs", `${s.dir}/certs`];
  /** What a CLI command prints to stdout. */
  async function printed(run: () => Promise<void>): Promise<string> {
    const lines: string[] = [];
    const spy = vi.spyOn(console, "log").mockImplementation((...a: unknown[]) => void lines.push(a.join(" ")));
    try {
      await run();
    } finally {
      spy.mockRestore();
    }
    return lines.join("\n");
  }

  it("tasks create and tasks get print the command and its result in words", async () => {
    await led("cli-words-led");
    const { device } = await ledSim(s, "cli-words-led");
    try {
      const created = await printed(() => tasksCommand(["create", "cli-words-led", "brightness", "35", "--wait", "done", "--timeout", "20s", ...flags()]));
      expect(created).toMatch(/^state\s+SUCCEEDED$/m);
      expect(created).toMatch(/^command\s+brightness 35$/m);
      expect(created).toMatch(/^result\s+.*brightness 35/m);
      const name = /^name\s+(devices\/\S+)$/m.exec(created)![1]!;
      const got = await printed(() => tasksCommand(["get", name, ...flags()]));
      expect(got).toMatch(/^command\s+brightness 35$/m);
      expect(got).toMatch(/^result\s+.*brightness 35/m);
      expect(got).not.toContain("setBrightness");
      expect(await printed(() => tasksCommand(["list", "cli-words-led", ...flags()]))).toMatch(/SUCCEEDED\s+5\s+brightness 35\s/);
    } finally {
      await device.close();
    }
  });

  it("jobs create takes the kind from an action only one kind has, and asks for one when several have it", async () => {
    await devices().createDevice({ deviceId: "cli-job-led", device: { labels: { x: "y" }, kind: { case: "led", value: {} } } });
    const out = await printed(() => jobsCommand(["create", "cli-bright", "--selector", 'labels.x = "y"', "--command", "brightness 20", ...flags()]));
    expect(out).toMatch(/^command\s+brightness 20$/m);
    const job = await connectClient(s, JobService, "connect").getJob({ name: "jobs/cli-bright" });
    expect(job.command?.kind.case).toBe("led");
    expect(job.command?.kind.value).toMatchObject({ action: { case: "setBrightness", value: 20 } });
    await expect(jobsCommand(["create", "cli-off", "--selector", 'labels.x = "y"', "--command", "power off", ...flags()])).rejects.toThrow(
      /"power" is an action of .* and .*; the selector names no kind: add kind = "\w+" to it, or --kind /,
    );
    await expect(connectClient(s, JobService, "connect").getJob({ name: "jobs/cli-off" })).rejects.toMatchObject({ code: Code.NotFound });
  });

  it("devices create and update take the desired-state flags of the device's kind, and refuse another kind's", async () => {
    await printed(() => devicesCommand(["create", "cli-flags-coffee", "--kind", "coffee", "--power", "on", ...flags()]));
    const coffeeMachine = await devices().getDevice({ name: "devices/cli-flags-coffee" });
    expect(coffeeMachine.kind).toMatchObject({ case: "coffeeMachine", value: { desired: { power: true } } });
    await expect(devicesCommand(["update", "cli-flags-coffee", "--brightness", "30", ...flags()])).rejects.toThrow(
      /^--brightness: not a flag of kind coffee_machine, which takes --power on\|off$/,
    );
    await led("cli-flags-led");
    await printed(() => devicesCommand(["update", "cli-flags-led", "--brightness", "30", "--mode", "breathe", ...flags()]));
    const d = await devices().getDevice({ name: "devices/cli-flags-led" });
    expect(d.kind.case === "led" && d.kind.value.desired).toMatchObject({ brightness: 30, mode: LedMode.BREATHE });
  });
});
