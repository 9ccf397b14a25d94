/**
 * At-most-once task execution on a device, independent of MQTT.
 *
 * Downlink is at-least-once: a TaskRequest arrives again after a reconnect (QoS 1 redelivery), after a
 * Hello (Tether resends every pending task) and on a retry after a timeout (higher `attempt`, same
 * `task_id`). A machine must not brew twice because the network hiccuped, so every task id is
 * remembered in a bounded LRU: the first arrival queues the task, every later arrival only re-acks and,
 * if it is finished, re-sends the cached result. Tasks run one at a time in arrival order, which keeps
 * the per-device order Tether promises and matches real hardware that can do one thing at a time.
 */
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import type { Logger } from "pino";
import type { TaskRequest } from "../../gen/tether/device/v1/downlink_pb.js";
import { TaskResultSchema, type TaskResult, type UplinkSchema } from "../../gen/tether/device/v1/uplink_pb.js";
import { CommandSchema, type Command, type CommandResultSchema } from "../../gen/tether/v1/command_pb.js";
import { DeviceFailure, DeviceRejection } from "./errors.js";

/** What a handler gets besides the command. */
export interface TaskContext {
  taskId: string;
  attempt: number;
  /** 0 (lowest) to 9 (highest): Tether sends queued tasks highest first; a handler may use it too. */
  priority: number;
  /**
   * Reports progress. Resolves once the message is queued, not when the broker has it: a physical
   * process (a brew) must not stall because the network is briefly down.
   */
  progress(percent: number, message?: string): Promise<void>;
  /** Aborted when Tether cancels the task (or the device shuts down). */
  signal: AbortSignal;
}

/** A successful result, as a plain init object (`{ kind: { case: <product case>, value: {...} } }`) or message. */
export type CommandResultInit = MessageInitShape<typeof CommandResultSchema>;

/** Executes one command; throw {@link DeviceRejection} or {@link DeviceFailure} for unhappy endings. */
export type TaskHandler = (command: Command, ctx: TaskContext) => Promise<CommandResultInit> | CommandResultInit;

/** The `body` oneof of an Uplink, as an init object. */
export type UplinkBody = NonNullable<MessageInitShape<typeof UplinkSchema>["body"]>;

type Entry =
  | { state: "queued"; request: TaskRequest }
  | { state: "running"; request: TaskRequest; controller: AbortController }
  | { state: "done"; result: TaskResult };

export interface TaskExecutorOptions {
  handler: TaskHandler;
  /** Publishes an uplink body; must not throw (errors are the caller's to log). */
  send(body: UplinkBody): void;
  log: Logger;
  cacheSize: number;
  onTask?(request: TaskRequest): void;
  onResult?(result: TaskResult): void;
}

/** Reason reported for a canceled task; Tether and tests match on it. */
export const CANCELED = "canceled";
export const DEADLINE_PASSED = "deadline passed";

export class TaskExecutor {
  /** How many times each task id was executed (handler invoked); at-most-once means never above 1. */
  readonly executions = new Map<string, number>();
  private readonly cache = new Map<string, Entry>();
  private readonly queue: string[] = [];
  private draining = false;
  private stopped = false;

  constructor(private readonly opts: TaskExecutorOptions) {}

  /** Handles a TaskRequest from the downlink: ack, then queue it or answer from the cache. */
  receive(request: TaskRequest): void {
    const { taskId, attempt } = request;
    this.opts.send({ case: "ack", value: { taskId, attempt } });
    const known = this.cache.get(taskId);
    if (known) {
      this.touch(taskId, known);
      this.opts.log.debug({ taskId, attempt, state: known.state }, "duplicate task request");
      if (known.state === "done") this.opts.send({ case: "result", value: known.result });
      return;
    }
    this.remember(taskId, { state: "queued", request });
    this.queue.push(taskId);
    this.opts.onTask?.(request);
    void this.drain();
  }

  /**
   * Cancels a task: aborts it if running, reports a queued one as canceled at once (so Tether need not
   * wait for the tasks ahead of it), and remembers an unknown id so a late TaskRequest never runs.
   */
  cancel(taskId: string, reason: string): void {
    const entry = this.cache.get(taskId);
    this.opts.log.info({ taskId, reason, state: entry?.state ?? "unknown" }, "task canceled");
    if (!entry) {
      this.remember(taskId, { state: "done", result: rejected(taskId, CANCELED) });
    } else if (entry.state === "queued") {
      this.finish(taskId, rejected(taskId, CANCELED));
    } else if (entry.state === "running") {
      entry.controller.abort(new DeviceRejection(CANCELED));
    }
  }

  /** Stops executing: aborts the running task and reports nothing more (the device is going away). */
  stop(): void {
    this.stopped = true;
    for (const entry of this.cache.values()) {
      if (entry.state === "running") entry.controller.abort(new Error("device shutting down"));
    }
  }

  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      while (!this.stopped && this.queue.length > 0) {
        const taskId = this.queue.shift()!;
        const entry = this.cache.get(taskId);
        if (entry?.state === "queued") await this.run(entry.request);
      }
    } finally {
      this.draining = false;
    }
  }

  private async run(request: TaskRequest): Promise<void> {
    const { taskId, attempt } = request;
    // Checked at start, not arrival: the deadline means "do not start after", and a task may wait in the queue.
    if (request.deadline && timestampMs(request.deadline) <= Date.now()) {
      this.finish(taskId, rejected(taskId, DEADLINE_PASSED));
      return;
    }
    const controller = new AbortController();
    this.cache.set(taskId, { state: "running", request, controller });
    this.executions.set(taskId, (this.executions.get(taskId) ?? 0) + 1);
    const ctx: TaskContext = {
      taskId,
      attempt,
      priority: request.priority,
      signal: controller.signal,
      progress: async (percent, message = "") => {
        if (!this.stopped) this.opts.send({ case: "progress", value: { taskId, percent: clampPercent(percent), message } });
      },
    };
    let result: TaskResult;
    try {
      const success = await this.opts.handler(request.command ?? create(CommandSchema), ctx);
      // A handler that returns a result did the work, even if a cancel arrived meanwhile: report the truth.
      result = create(TaskResultSchema, { taskId, outcome: { case: "success", value: success } });
    } catch (err) {
      result = unhappyResult(taskId, err, controller.signal, this.opts.log);
    }
    if (this.stopped) return; // shutting down: the task stays unreported; Tether retries it after its timeout
    this.finish(taskId, result);
  }

  private finish(taskId: string, result: TaskResult): void {
    this.remember(taskId, { state: "done", result });
    this.opts.send({ case: "result", value: result });
    this.opts.onResult?.(result);
  }

  private touch(taskId: string, entry: Entry): void {
    this.cache.delete(taskId);
    this.cache.set(taskId, entry);
  }

  /** Inserts as most recent and evicts the oldest *finished* entries: forgetting a queued or running task would allow a second run. */
  private remember(taskId: string, entry: Entry): void {
    this.touch(taskId, entry);
    if (this.cache.size <= this.opts.cacheSize) return;
    for (const [id, e] of this.cache) {
      if (this.cache.size <= this.opts.cacheSize) break;
      if (e.state === "done") this.cache.delete(id);
    }
  }
}

function rejected(taskId: string, reason: string): TaskResult {
  return create(TaskResultSchema, { taskId, outcome: { case: "rejected", value: { reason } } });
}

/** Maps what a handler threw to a rejection or failure; a cancel wins over whatever the aborted handler threw. */
function unhappyResult(taskId: string, err: unknown, signal: AbortSignal, log: Logger): TaskResult {
  if (signal.aborted && signal.reason instanceof DeviceRejection) return rejected(taskId, signal.reason.reason);
  if (err instanceof DeviceRejection) return rejected(taskId, err.reason);
  if (err instanceof DeviceFailure) {
    const failure = { code: err.code, message: err.message, details: err.details };
    return create(TaskResultSchema, { taskId, outcome: { case: "failed", value: failure } });
  }
  log.error({ err, taskId }, "command handler threw an unexpected error");
  const failure = { code: "INTERNAL", message: err instanceof Error ? err.message : String(err) };
  return create(TaskResultSchema, { taskId, outcome: { case: "failed", value: failure } });
}

function clampPercent(percent: number): number {
  return Math.max(0, Math.min(100, Math.round(percent)));
}
