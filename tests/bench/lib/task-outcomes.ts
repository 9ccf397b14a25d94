import type { Client } from "@connectrpc/connect";
import { Task_State as State, type Task } from "../../../gen/tether/v1/task_pb.js";
import type { TaskService } from "../../../gen/tether/v1/task_service_pb.js";
import { now, sleep } from "./stats.js";

export interface Outcome {
  /** performance.now() when the stream delivered the task's first terminal state to this client. */
  at: number;
  state: State;
}

const TERMINAL = new Set([State.SUCCEEDED, State.REJECTED, State.FAILED, State.TIMED_OUT, State.EXPIRED, State.CANCELED]);

/**
 * One `WatchTasks("devices/-")` stream, as an app would keep open: records when each task name
 * first shows a terminal state, and lets callers await that moment. Reopens the stream if the
 * server ends it (a gap shows up as tasks without an outcome, which the phases count).
 */
export class TaskOutcomes {
  events = 0;
  reopened = 0;
  readonly streamErrors: string[] = [];
  private readonly ended = new Map<string, Outcome>();
  private readonly waiters = new Map<string, (o: Outcome) => void>();
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;

  start(client: Client<typeof TaskService>): void {
    this.loop = (async () => {
      while (!this.abort.signal.aborted) {
        try {
          for await (const res of client.watchTasks({ name: "devices/-" }, { signal: this.abort.signal })) {
            if (res.task) this.record(res.task);
          }
        } catch (err) {
          if (this.abort.signal.aborted) return;
          this.streamErrors.push(err instanceof Error ? err.message : String(err));
        }
        if (this.abort.signal.aborted) return;
        this.reopened++;
        await sleep(50);
      }
    })();
  }

  /** Resolves with the task's outcome, or undefined if none arrives within `timeoutMs`. */
  wait(name: string, timeoutMs: number): Promise<Outcome | undefined> {
    const seen = this.ended.get(name);
    if (seen) {
      this.ended.delete(name);
      return Promise.resolve(seen);
    }
    return new Promise((resolve) => {
      const timer = setTimeout(
        () => {
          this.waiters.delete(name);
          resolve(undefined);
        },
        Math.max(0, timeoutMs),
      );
      this.waiters.set(name, (o) => {
        clearTimeout(timer);
        resolve(o);
      });
    });
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
  }

  private record(task: Task): void {
    this.events++;
    if (!TERMINAL.has(task.state)) return;
    const outcome = { at: now(), state: task.state };
    const waiter = this.waiters.get(task.name);
    if (waiter) {
      this.waiters.delete(task.name);
      waiter(outcome);
    } else if (!this.ended.has(task.name)) {
      this.ended.set(task.name, outcome); // arrived before CreateTask's response
    }
  }
}
