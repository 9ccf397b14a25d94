import { Task_State as State } from "../../../gen/tether/v1/task_pb.js";

export { State };

/** Terminal states: nothing changes a task once it is in one. */
export const TERMINAL: ReadonlySet<State> = new Set([State.SUCCEEDED, State.REJECTED, State.FAILED, State.TIMED_OUT, State.EXPIRED, State.CANCELED]);

/** Non-terminal states, in lifecycle order. */
export const OPEN_STATES = [State.QUEUED, State.SENT, State.DELIVERED, State.RUNNING] as const;

export const isTerminal = (s: State): boolean => TERMINAL.has(s);

/** What can happen to a task. Device events carry what the device said; timers carry nothing. */
export type TaskEvent =
  | { type: "send" }
  | { type: "ack" }
  | { type: "progress" }
  | { type: "result"; outcome: "succeeded" | "rejected" | "failed" }
  | { type: "cancel" }
  | { type: "expire" }
  | { type: "execution_timeout"; retry: boolean };

/** The outcome of applying an event: a new state, or a late/duplicate event that changes nothing. */
export type Transition = { ok: true; to: State } | { ok: false; reason: string };

const RESULT_STATE = { succeeded: State.SUCCEEDED, rejected: State.REJECTED, failed: State.FAILED } as const;

/**
 * The task lifecycle as a pure function:
 *
 *   QUEUED → SENT → DELIVERED → RUNNING → SUCCEEDED | REJECTED | FAILED
 *   QUEUED | SENT → EXPIRED (deadline before delivery)
 *   DELIVERED | RUNNING → QUEUED (retry) | TIMED_OUT (last attempt)
 *   any open state → CANCELED
 *
 * `attempted` says whether the task was ever sent: a device may answer an earlier attempt while a
 * retry waits in QUEUED, and that answer still counts. Anything else is "late": recorded, not applied.
 */
export function transition(from: State, event: TaskEvent, attempted: boolean): Transition {
  const late = (why: string): Transition => ({ ok: false, reason: `${event.type} while ${State[from]}: ${why}` });
  if (isTerminal(from)) return late("the task already ended");
  const sentBefore = from !== State.QUEUED || attempted;
  switch (event.type) {
    case "send":
      return from === State.QUEUED ? { ok: true, to: State.SENT } : late("already sent");
    case "ack":
      if (from === State.DELIVERED || from === State.RUNNING) return late("duplicate acknowledgement");
      return sentBefore ? { ok: true, to: State.DELIVERED } : late("the task was never sent");
    case "progress":
      return sentBefore ? { ok: true, to: State.RUNNING } : late("the task was never sent");
    case "result":
      return sentBefore ? { ok: true, to: RESULT_STATE[event.outcome] } : late("the task was never sent");
    case "cancel":
      return { ok: true, to: State.CANCELED };
    case "expire":
      return from === State.QUEUED || from === State.SENT ? { ok: true, to: State.EXPIRED } : late("already delivered");
    case "execution_timeout":
      if (from !== State.DELIVERED && from !== State.RUNNING) return late("not executing");
      return { ok: true, to: event.retry ? State.QUEUED : State.TIMED_OUT };
  }
}

/** Exponential backoff before retry `attempt + 1`: 1 s, 2 s, 4 s … capped at 60 s. */
export function retryBackoffMs(attempt: number): number {
  return Math.min(60_000, 1000 * 2 ** Math.max(0, attempt - 1));
}

/** Storage names: the enum name without the prefix (`QUEUED`). */
export function stateName(s: State): string {
  return State[s];
}

export function parseStateName(name: string): State | undefined {
  const key = name.toUpperCase().replace(/^STATE_/, "");
  const v = (State as unknown as Record<string, State>)[key];
  return v === undefined || v === State.UNSPECIFIED ? undefined : v;
}
