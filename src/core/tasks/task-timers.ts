import type { Clock } from "../clock.js";
import type { CoreLogger } from "../log.js";
import type { Dispatcher } from "./dispatcher.js";
import type { Lifecycle } from "./task-lifecycle.js";
import type { TaskRepository } from "../ports/task-repository.js";
import { retryBackoffMs, State } from "./task-state.js";

export interface TimerDeps {
  tasks: TaskRepository;
  lifecycle: Lifecycle;
  dispatcher: Dispatcher;
  clock: Clock;
  log: CoreLogger;
  /** A SENT task not acknowledged within this long is sent again while the device is online. */
  ackTimeoutMs: number;
}

const BATCH = 500;

/**
 * The time-driven half of the lifecycle: expiry, execution timeouts with retries, resending
 * unacknowledged tasks, and releasing retries whose backoff is over. `sweep()` is idempotent and
 * safe on every replica at once; it reads the time only from the Clock, so tests drive it.
 */
export function createTaskTimers({ tasks, lifecycle, dispatcher, clock, log, ackTimeoutMs }: TimerDeps) {
  return {
    async sweep(): Promise<void> {
      const now = clock.now();
      for (const t of await tasks.dueTimers(now, BATCH)) {
        if (t.state === State.QUEUED || t.state === State.SENT) {
          await lifecycle.apply(t, { type: "expire" }, (next) => {
            next.stateReason = "deadline passed before delivery";
          });
        } else {
          const retry = t.attempt < t.maxAttempts;
          const r = await lifecycle.apply(t, { type: "execution_timeout", retry }, (next, at) => {
            next.progress = undefined;
            next.deadlineTime = undefined;
            if (retry) {
              next.nextAttemptTime = new Date(at.getTime() + retryBackoffMs(t.attempt));
              next.stateReason = `attempt ${t.attempt} got no result within the execution timeout; retrying`;
            } else {
              next.stateReason = `no result within the execution timeout after ${t.attempt} attempt(s)`;
            }
          });
          if (r.applied) log.info({ taskId: t.id, deviceId: t.deviceId, retry }, "task execution timed out");
          // A slot may have opened for the device.
          if (r.applied) void dispatcher.kick(t.deviceId);
        }
      }
      for (const t of await tasks.unacknowledged(new Date(now.getTime() - ackTimeoutMs), BATCH)) {
        await dispatcher.resend(t);
      }
      await Promise.all((await tasks.devicesWithDueTasks(now, BATCH)).map((id) => dispatcher.kick(id)));
    },
  };
}
