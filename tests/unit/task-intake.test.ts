import { DEFAULT_PRIORITY } from "../../src/core/tasks/task-record.js";
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { DeliveryPolicy_Mode } from "../../gen/tether/v1/device_pb.js";
import { CommandSchema } from "../../gen/tether/v1/command_pb.js";
import type { Task } from "../../gen/tether/v1/task_pb.js";
import { createMemoryFeed } from "../../src/bus/memory-feed.js";
import { AlreadyExistsError, FailedPreconditionError, NotFoundError, PermissionDeniedError, ResourceExhaustedError } from "../../src/core/errors.js";
import {
  commandKind,
  createAdmission,
  createTaskAnnouncer,
  DEFAULT_MAX_PENDING_TASKS,
  type IntakeDevice,
  refusalError,
  replayOf,
} from "../../src/core/tasks/task-intake.js";
import type { TaskRecord } from "../../src/core/tasks/task-record.js";
import { State } from "../../src/core/tasks/task-state.js";

const device = (id: string, over: Partial<IntakeDevice> = {}): [string, IntakeDevice] => [
  id,
  {
    kind: "led",
    maxPendingTasks: 0,
    openTasks: 0,
    open: { queued: 0, sent: 0, delivered: 0, running: 0 },
    mode: DeliveryPolicy_Mode.BURST,
    online: true,
    meta: { id, kind: "led", labels: {}, owner: "" },
    ...over,
  },
];

function record(id: string, deviceId: string, requestHash?: string): TaskRecord {
  const now = new Date("2026-01-01T00:00:00Z");
  return {
    id,
    deviceId,
    sequence: 1,
    revision: 0,
    command: create(CommandSchema, { kind: { case: "led", value: { action: { case: "setPower", value: true } } } }),
    state: State.QUEUED,
    stateReason: "",
    requestHash,
    expireTime: now,
    executionTimeoutMs: 1000,
    maxAttempts: 1,
    attempt: 0,
    createTime: now,
    updateTime: now,
    cancelPending: false,
    lateEventCount: 0,
    priority: DEFAULT_PRIORITY,
    creator: "",
  };
}

describe("task intake: admission", () => {
  it("refuses a device that does not exist, or of another kind, naming it", () => {
    const a = createAdmission(new Map([device("lamp")]));
    expect(a.admit("gone", "led")).toEqual({ code: "not_found", message: "devices/gone does not exist" });
    expect(a.admit("lamp", "coffee_machine")).toEqual({ code: "wrong_kind", message: "devices/lamp is a led; a coffee_machine command does not apply to it" });
    expect(a.admit("lamp", "led")).toBeUndefined();
  });

  it("holds the cap across one batch: candidates for one device share its room", () => {
    const a = createAdmission(new Map([device("lamp", { maxPendingTasks: 3, openTasks: 1 })]));
    expect(a.admit("lamp", "led")).toBeUndefined();
    expect(a.admit("lamp", "led")).toBeUndefined();
    expect(a.admit("lamp", "led")).toEqual({ code: "busy", message: "devices/lamp already has 3 open tasks (its delivery_policy.max_pending_tasks is 3)" });
  });

  it("applies the default cap when the device sets none", () => {
    const a = createAdmission(new Map([device("lamp", { openTasks: DEFAULT_MAX_PENDING_TASKS - 1 })]));
    expect(a.admit("lamp", "led")).toBeUndefined();
    expect(a.admit("lamp", "led")?.code).toBe("busy");
  });

  it("checks the creator's right before the cap, and only for a creator", () => {
    const seen: string[] = [];
    const a = createAdmission(new Map([device("lamp", { maxPendingTasks: 1, openTasks: 1 })]), (creator, d) => {
      seen.push(`${creator}@${d.id}`);
      return creator === "users/eve" ? "users/eve may no longer command devices/lamp" : undefined;
    });
    expect(a.admit("lamp", "led", "users/eve")).toEqual({ code: "not_permitted", message: "users/eve may no longer command devices/lamp" });
    expect(a.admit("lamp", "led", "users/ann")?.code).toBe("busy");
    expect(a.admit("lamp", "led")?.code).toBe("busy");
    expect(seen).toEqual(["users/eve@lamp", "users/ann@lamp"]);
  });

  it("maps refusals to the errors CreateTask answers with", () => {
    expect(refusalError("x", { code: "not_found", message: "" })).toBeInstanceOf(NotFoundError);
    expect(refusalError("x", { code: "wrong_kind", message: "" })).toBeInstanceOf(FailedPreconditionError);
    expect(refusalError("x", { code: "not_permitted", message: "" })).toBeInstanceOf(PermissionDeniedError);
    const busy = refusalError("x", { code: "busy", message: "devices/x already has 2 open tasks" });
    expect(busy).toBeInstanceOf(ResourceExhaustedError);
    expect(busy.message).toBe("devices/x already has 2 open tasks");
  });

  it("names the kind of a command from the product registry", () => {
    expect(commandKind(create(CommandSchema, { kind: { case: "coffeeMachine", value: { action: { case: "clean", value: {} } } } }))).toBe("coffee_machine");
  });
});

describe("task intake: idempotency", () => {
  it("answers a repeated request id with its task if the command is the same, and refuses another command", () => {
    const t = record("t1", "lamp", "hash-a");
    expect(replayOf(t, "r1", "hash-a")).toBe(t);
    expect(() => replayOf(t, "r1", "hash-b")).toThrow(AlreadyExistsError);
    expect(() => replayOf(t, "r1", "hash-b")).toThrow(/request_id "r1" but a different command on devices\/lamp/);
  });
});

describe("task intake: announcement after commit", () => {
  function wire(fail?: string) {
    const feed = createMemoryFeed<Task>();
    const published: string[] = [];
    const states: string[] = [];
    feed.subscribe((t) => (published.push(t.name), states.push(`${t.name.split("/").at(-1)} ${State[t.state]}`)));
    const kicked: string[] = [];
    const sent: string[] = [];
    const errors: string[] = [];
    const announce = createTaskAnnouncer({
      feed,
      dispatcher: {
        kick: async (id) => (kicked.push(id), id === fail ? Promise.reject(new Error("link down")) : undefined),
        sendClaimed: async (t) => void sent.push(t.id),
      },
      log: {
        error: (o: object, msg: string) => void errors.push(`${(o as { deviceId: string }).deviceId}: ${msg}`),
        warn() {},
        info() {},
        debug() {},
      } as never,
    });
    return { announce, published, states, kicked, sent, errors };
  }

  it("a task created SENT is published as created (QUEUED) then as sent, handed to the dispatcher, and costs no dispatch pass", () => {
    const w = wire();
    const claimed: TaskRecord = { ...record("t1", "a"), state: State.SENT, attempt: 1, sendTime: new Date("2026-01-01T00:00:01Z") };
    const answered = w.announce([claimed, record("t2", "b")]);
    expect(w.states).toEqual(["t1 QUEUED", "t1 SENT", "t2 QUEUED"]);
    expect(w.sent).toEqual(["t1"]);
    expect(w.kicked).toEqual(["b"]);
    // The answer is the task as created: QUEUED, no attempt yet.
    expect(answered.map((t) => [State[t.state], t.attempt, t.sendTime === undefined])).toEqual([
      ["QUEUED", 0, true],
      ["QUEUED", 0, true],
    ]);
  });

  it("publishes every task and kicks each device once", () => {
    const w = wire();
    w.announce([record("t1", "a"), record("t2", "a"), record("t3", "b")]);
    expect(w.published).toEqual(["devices/a/tasks/t1", "devices/a/tasks/t2", "devices/b/tasks/t3"]);
    expect(w.kicked).toEqual(["a", "b"]);
  });

  it("kicks only the devices named online (a job step over offline devices)", () => {
    const w = wire();
    w.announce([record("t1", "a"), record("t2", "b")], ["b"]);
    expect(w.published).toHaveLength(2);
    expect(w.kicked).toEqual(["b"]);
  });

  it("logs a failed dispatch pass instead of throwing: the tasks are committed", async () => {
    const w = wire("a");
    expect(() => w.announce([record("t1", "a")])).not.toThrow();
    await new Promise((r) => setImmediate(r));
    expect(w.errors).toEqual(["a: dispatch after a task was created failed"]);
  });
});
