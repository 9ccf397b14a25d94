import { describe, expect, it } from "vitest";
import { DeliveryPolicy_Mode as Mode } from "../../gen/tether/v1/device_pb.js";
import { deliverableCount } from "../../src/core/tasks/delivery-plan.js";
import { retryBackoffMs, State, type TaskEvent, transition } from "../../src/core/tasks/task-state.js";

const ok = (to: State) => ({ ok: true, to });
const late = { ok: false };

/** The lifecycle as a table: from, event, whether the task was ever sent, expected outcome. */
const cases: Array<[State, TaskEvent, boolean, { ok: boolean; to?: State }]> = [
  [State.QUEUED, { type: "send" }, false, ok(State.SENT)],
  [State.SENT, { type: "send" }, true, late],
  [State.SENT, { type: "ack" }, true, ok(State.DELIVERED)],
  [State.DELIVERED, { type: "ack" }, true, late], // duplicate ack
  [State.RUNNING, { type: "ack" }, true, late],
  [State.QUEUED, { type: "ack" }, false, late], // never sent: a forged or confused device
  [State.QUEUED, { type: "ack" }, true, ok(State.DELIVERED)], // answer to an earlier attempt while a retry waits
  [State.SENT, { type: "progress" }, true, ok(State.RUNNING)], // ack lost, progress arrived
  [State.DELIVERED, { type: "progress" }, true, ok(State.RUNNING)],
  [State.RUNNING, { type: "progress" }, true, ok(State.RUNNING)],
  [State.RUNNING, { type: "result", outcome: "succeeded" }, true, ok(State.SUCCEEDED)],
  [State.DELIVERED, { type: "result", outcome: "rejected" }, true, ok(State.REJECTED)],
  [State.SENT, { type: "result", outcome: "failed" }, true, ok(State.FAILED)],
  [State.SUCCEEDED, { type: "result", outcome: "succeeded" }, true, late], // duplicate result
  [State.CANCELED, { type: "result", outcome: "succeeded" }, true, late], // result after cancel
  [State.TIMED_OUT, { type: "result", outcome: "succeeded" }, true, late], // result after timeout
  [State.QUEUED, { type: "cancel" }, false, ok(State.CANCELED)],
  [State.RUNNING, { type: "cancel" }, true, ok(State.CANCELED)],
  [State.FAILED, { type: "cancel" }, true, late],
  [State.QUEUED, { type: "expire" }, false, ok(State.EXPIRED)],
  [State.SENT, { type: "expire" }, true, ok(State.EXPIRED)],
  [State.DELIVERED, { type: "expire" }, true, late], // delivered in time: the execution timeout governs
  [State.RUNNING, { type: "execution_timeout", retry: true }, true, ok(State.QUEUED)],
  [State.DELIVERED, { type: "execution_timeout", retry: false }, true, ok(State.TIMED_OUT)],
  [State.SENT, { type: "execution_timeout", retry: false }, true, late],
];

describe("task state machine", () => {
  for (const [from, event, attempted, expected] of cases) {
    it(`${State[from]} + ${event.type}${"outcome" in event ? `(${event.outcome})` : ""}${attempted ? "" : " (never sent)"} → ${expected.ok ? State[expected.to!] : "late"}`, () => {
      const r = transition(from, event, attempted);
      expect(r.ok).toBe(expected.ok);
      if (r.ok) expect(r.to).toBe(expected.to);
      else expect(r.reason).toMatch(new RegExp(`^${event.type} while ${State[from]}`));
    });
  }

  it("backs off exponentially, capped at a minute", () => {
    expect([1, 2, 3, 4, 10].map(retryBackoffMs)).toEqual([1000, 2000, 4000, 8000, 60_000]);
  });
});

describe("delivery policy", () => {
  const snap = (mode: Mode, sent = 0, delivered = 0, running = 0, online = true) => ({ online, mode, sent, delivered, running });
  it("sends nothing to an offline device", () => expect(deliverableCount(snap(Mode.BURST, 0, 0, 0, false))).toBe(0));
  it("bursts by default", () => {
    expect(deliverableCount(snap(Mode.UNSPECIFIED, 5, 5, 5))).toBeGreaterThan(1);
    expect(deliverableCount(snap(Mode.BURST, 5))).toBeGreaterThan(1);
  });
  it("one until acknowledged waits only for SENT tasks", () => {
    expect(deliverableCount(snap(Mode.ONE_UNTIL_ACKNOWLEDGED, 1))).toBe(0);
    expect(deliverableCount(snap(Mode.ONE_UNTIL_ACKNOWLEDGED, 0, 1, 1))).toBe(1);
  });
  it("one until completed waits for everything in flight", () => {
    expect(deliverableCount(snap(Mode.ONE_UNTIL_COMPLETED, 0, 0, 1))).toBe(0);
    expect(deliverableCount(snap(Mode.ONE_UNTIL_COMPLETED))).toBe(1);
  });
});
