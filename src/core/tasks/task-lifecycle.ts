import type { Task } from "../../../gen/tether/v1/task_pb.js";
import type { Clock } from "../clock.js";
import { AbortedError } from "../errors.js";
import type { ChangeFeed, Counters } from "../ports/index.js";
import { type TaskRecord, toTaskProto } from "./task-record.js";
import type { TaskRepository } from "../ports/task-repository.js";
import { isTerminal, type State, type TaskEvent, transition } from "./task-state.js";

export interface LifecycleDeps {
  tasks: TaskRepository;
  feed: ChangeFeed<Task>;
  clock: Clock;
  counters: Counters;
}

export interface Applied {
  task: TaskRecord;
  /** False when the event was late or a duplicate: recorded, nothing changed. */
  applied: boolean;
  from: State;
}

export type Lifecycle = ReturnType<typeof createLifecycle>;

/**
 * Applies lifecycle events to stored tasks: the state machine decides, the repository
 * compare-and-sets, the change feed tells watchers. Every path that changes a task's state goes
 * through here, so the rules hold whoever triggers them (device, timer, API, another replica).
 */
export function createLifecycle({ tasks, feed, clock, counters }: LifecycleDeps) {
  return {
    /** Tells watchers about a change a set-based statement made (the group commit's fast path). */
    published(t: TaskRecord): void {
      feed.publish(toTaskProto(t));
    },

    async apply(current: TaskRecord, event: TaskEvent, mutate: (next: TaskRecord, now: Date) => void = () => {}, detail = ""): Promise<Applied> {
      let t = current;
      for (let tries = 0; tries < 8; tries++) {
        const from = t.state;
        const tr = transition(from, event, t.attempt > 0);
        const now = clock.now();
        if (!tr.ok) {
          await tasks.recordLate(t.id, event.type, from, detail || tr.reason, now);
          counters.inc("tether_task_late_events_total", { event: event.type });
          return { task: t, applied: false, from };
        }
        const next: TaskRecord = { ...t, state: tr.to, updateTime: now };
        if (isTerminal(tr.to)) {
          next.endTime = now;
          next.deadlineTime = undefined;
          next.nextAttemptTime = undefined;
        }
        mutate(next, now);
        const saved = await tasks.update(next);
        if (saved) {
          feed.publish(toTaskProto(saved));
          return { task: saved, applied: true, from };
        }
        // Someone else changed it first (another replica, a concurrent event): re-read and re-decide.
        const fresh = await tasks.get(t.id);
        if (!fresh) throw new AbortedError(`task ${t.id} was deleted concurrently`);
        t = fresh;
      }
      throw new AbortedError(`task ${t.id} is changing too fast; retry`);
    },
  };
}
