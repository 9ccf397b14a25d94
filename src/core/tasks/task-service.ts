import type { Task } from "../../../gen/tether/v1/task_pb.js";
import {
  type CreateTaskRequest,
  CreateTaskRequest_WaitFor as WaitFor,
  type ListTasksRequest,
  type ListTasksResponse,
} from "../../../gen/tether/v1/task_service_pb.js";
import { type Access, actorOf } from "../access/access.js";
import { createDeviceRights } from "../access/device-rights.js";
import type { Clock } from "../clock.js";
import { deviceName, truncate } from "../devices/device-name.js";
import type { DeviceRepository, StoredDevice } from "../ports/device-repository.js";
import { FailedPreconditionError, InvalidArgumentError, NotFoundError, ResourceExhaustedError, TetherError } from "../errors.js";
import { decodePageToken, encodePageToken, resolvePageSize } from "../page-token.js";
import type { ChangeFeed } from "../ports/index.js";
import type { Dispatcher } from "./dispatcher.js";
import type { Lifecycle } from "./task-lifecycle.js";
import { parseTaskFilter, parseTaskName, parseTaskParent } from "./task-name.js";
import { taskName, toTaskProto } from "./task-record.js";
import type { CreatedTask, NewTask, TaskRepository } from "../ports/task-repository.js";
import type { TaskAnnouncer } from "./task-intake.js";
import { buildTask, waitTimeoutMs } from "./task-request.js";
import { isTerminal, State } from "./task-state.js";
import { watchFeed } from "../watch-feed.js";

export interface TaskServiceDeps {
  tasks: TaskRepository;
  devices: DeviceRepository;
  lifecycle: Lifecycle;
  dispatcher: Dispatcher;
  feed: ChangeFeed<Task>;
  /** After a create committed: announce and dispatch (the intake's announcer, shared with rules and jobs). */
  announce: TaskAnnouncer;
  /** Stores a new task: the group-commit batcher over `tasks.createMany` (default: `tasks.create`, one at a time). */
  create?: (task: NewTask) => Promise<CreatedTask>;
  /** Reads CreateTask's device: the batched read (one SELECT for the devices asked at once); default `devices.get`. */
  readDevice?: (id: string) => Promise<StoredDevice | undefined>;
  clock: Clock;
  /** CreateTask calls allowed to be storing at once before new ones get RESOURCE_EXHAUSTED. @default 512 */
  maxCreatesInFlight?: number;
}

/** Thrown when a synchronous CreateTask's wait ends before the device answered; the task lives on. */
export class WaitTimeoutError extends TetherError {
  override readonly name = "WaitTimeoutError";
  readonly code = "DEADLINE_EXCEEDED";
}

export type TaskService = ReturnType<typeof createTaskService>;

/**
 * The TaskService use cases: create (idempotent, optionally synchronous), read, cancel, watch.
 * Tasks are scoped by their device: reading needs viewer on it, creating and canceling operator.
 */
export function createTaskService(d: TaskServiceDeps) {
  const { tasks, devices, lifecycle, dispatcher, feed, announce, clock } = d;
  const maxCreates = d.maxCreatesInFlight ?? 512;
  const store = d.create ?? ((t: NewTask) => tasks.create(t));
  const readDevice = d.readDevice ?? ((id: string) => devices.get(id));
  let creating = 0;
  const rights = createDeviceRights(devices);

  async function load(name: string, field = "name") {
    const { deviceId, taskId } = parseTaskName(name, field);
    const t = await tasks.get(taskId);
    if (!t || t.deviceId !== deviceId) throw new NotFoundError(name);
    return t;
  }

  /** Resolves with the task once `done` holds for it, or rejects after `ms`. */
  function waitFor(name: string, initial: Task, done: (t: Task) => boolean, ms: number, signal?: AbortSignal): Promise<Task> {
    if (done(initial)) return Promise.resolve(initial);
    return new Promise((resolve, reject) => {
      const finish = (fn: () => void) => {
        clearTimeout(timer);
        unsubscribe();
        signal?.removeEventListener("abort", onAbort);
        fn();
      };
      const unsubscribe = feed.subscribe((t) => {
        if (t.name === name && done(t)) finish(() => resolve(t));
      });
      const timer = setTimeout(
        () => finish(() => reject(new WaitTimeoutError(`${name} is still ${State[initial.state]} after waiting ${ms} ms; it stays queued — watch or get it`))),
        ms,
      );
      const onAbort = () => finish(() => reject(new WaitTimeoutError("the call was canceled while waiting; the task stays queued")));
      signal?.addEventListener("abort", onAbort, { once: true });
      // Close the race between the create and the subscription: re-read once.
      void load(name).then(
        (t) => {
          const p = toTaskProto(t);
          if (done(p)) finish(() => resolve(p));
        },
        () => {},
      );
    });
  }

  return {
    async createTask(access: Access, req: CreateTaskRequest, signal?: AbortSignal): Promise<Task> {
      const { deviceId } = parseTaskParent(req.parent);
      if (deviceId === undefined) throw InvalidArgumentError.field("parent", "must name one device, devices/{device}");
      if (!Object.values(WaitFor).includes(req.waitFor)) throw InvalidArgumentError.field("wait_for", `unknown WaitFor ${req.waitFor}`);
      const wait = req.waitFor === WaitFor.UNSPECIFIED ? 0 : waitTimeoutMs(req);
      // Admission control: past capacity, a fast refusal the client can back off from beats a queue
      // that stretches every caller's latency to seconds. Waiting (wait_for) holds no slot.
      if (creating >= maxCreates) throw new ResourceExhaustedError(`more than ${maxCreates} CreateTask calls in flight; retry with backoff`);
      creating++;
      let stored: Awaited<ReturnType<DeviceRepository["get"]>>;
      let result: CreatedTask;
      try {
        stored = await readDevice(deviceId);
        if (!stored) throw new NotFoundError(deviceName(deviceId));
        await rights.require(access, "task.write", deviceId);
        result = await store(buildTask(req, stored.device, deviceId, clock.now(), actorOf(access)));
      } finally {
        creating--;
      }
      const { task, created } = result;
      const proto = created ? announce([task])[0]! : toTaskProto(task);
      if (wait === 0) return proto;
      const done =
        req.waitFor === WaitFor.COMPLETED
          ? (t: Task) => isTerminal(t.state)
          : (t: Task) => isTerminal(t.state) || t.state === State.DELIVERED || t.state === State.RUNNING;
      return waitFor(proto.name, proto, done, wait, signal);
    },

    async getTask(access: Access, name: string): Promise<Task> {
      const t = await load(name);
      await rights.require(access, "device.read", t.deviceId, name);
      return toTaskProto(t);
    },

    async listTasks(access: Access, req: ListTasksRequest): Promise<ListTasksResponse> {
      const { deviceId } = parseTaskParent(req.parent);
      const states = parseTaskFilter(req.filter);
      const limit = resolvePageSize(req.pageSize);
      const query = `tasks|${req.parent}|${req.filter}`;
      const before = decodePageToken(req.pageToken, query);
      if (deviceId !== undefined && !(await devices.get(deviceId))) throw new NotFoundError(deviceName(deviceId));
      if (deviceId !== undefined) await rights.require(access, "device.read", deviceId);
      const rows = await tasks.list({
        deviceId,
        states,
        scope: access.scope(),
        beforeSequence: before === undefined ? undefined : Number(before),
        limit: limit + 1,
      });
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      return {
        $typeName: "tether.v1.ListTasksResponse",
        tasks: page.map(toTaskProto),
        nextPageToken: rows.length > limit && last ? encodePageToken(String(last.sequence), query) : "",
      };
    },

    async cancelTask(access: Access, name: string, reason: string): Promise<Task> {
      if (reason.length > 256) throw InvalidArgumentError.field("reason", "must be at most 256 characters");
      const t = await load(name);
      await rights.require(access, "device.read", t.deviceId, name);
      await rights.require(access, "task.write", t.deviceId);
      if (isTerminal(t.state)) throw new FailedPreconditionError(`${name} already ended as ${State[t.state]}`);
      const r = await lifecycle.apply(t, { type: "cancel" }, (next) => {
        next.stateReason = reason ? `canceled: ${truncate(reason, 256)}` : "canceled by request";
        // The device may hold it: tell it, now if it is online, else on its next hello.
        next.cancelPending = t.attempt > 0;
      });
      if (!r.applied) throw new FailedPreconditionError(`${name} already ended as ${State[r.task.state]}`);
      if (r.task.cancelPending) void dispatcher.kick(t.deviceId);
      return toTaskProto(r.task);
    },

    /** WatchTasks: current state (optionally) then every change, until the caller goes away. */
    async *watchTasks(access: Access, name: string, sendInitial: boolean, signal: AbortSignal, onOverflow?: () => void): AsyncGenerator<Task> {
      let match: (t: Task) => boolean;
      let initial: () => Promise<Task[]>;
      if (name.includes("/tasks/")) {
        const t = await load(name);
        await rights.require(access, "device.read", t.deviceId, name);
        match = (x) => x.name === name;
        initial = async () => [toTaskProto(t)];
      } else {
        const { deviceId } = parseTaskParent(name, "name");
        if (deviceId !== undefined && !(await devices.get(deviceId))) throw new NotFoundError(deviceName(deviceId));
        if (deviceId !== undefined) await rights.require(access, "device.read", deviceId);
        const prefix = deviceId === undefined ? "devices/" : `${taskName(deviceId, "")}`;
        match = (x) => x.name.startsWith(prefix);
        initial = async () => {
          const open = await tasks.list({ deviceId, states: [State.QUEUED, State.SENT, State.DELIVERED, State.RUNNING], scope: access.scope(), limit: 1000 });
          return open.reverse().map(toTaskProto);
        };
      }
      // Each item is checked against the caller's rights as of sending: an unshare stops the flow.
      const gate = rights.gate(access);
      const allow = access.all ? undefined : (t: Task) => gate(parseTaskName(t.name).deviceId);
      yield* watchFeed(feed, match, sendInitial ? initial : undefined, signal, undefined, allow, onOverflow);
    },
  };
}
