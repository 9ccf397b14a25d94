import { describe, expect, it } from "vitest";
import type { JobRecord } from "../../src/core/jobs/job-record.js";
import { abortVerdict, countsOf, currentRatePerMinute, planStep } from "../../src/core/jobs/job-rollout.js";
import { State } from "../../src/core/tasks/task-state.js";

const T0 = new Date("2025-01-01T00:00:00Z");
const at = (ms: number) => new Date(T0.getTime() + ms);

function job(over: Partial<JobRecord> = {}): JobRecord {
  return {
    id: "j",
    uid: "00000000-0000-0000-0000-000000000000",
    displayName: "",
    command: {} as JobRecord["command"],
    productKind: "led",
    target: { kind: "devices", deviceIds: [] },
    rollout: { maxPerMinute: 0 },
    executionTimeoutMs: 60_000,
    maxAttempts: 3,
    taskTtlMs: 86_400_000,
    taskPriority: 5,
    state: "RUNNING",
    stateReason: "started",
    targetCount: 1000,
    dispatchedCount: 0,
    skippedCount: 0,
    rateTokens: 1,
    rateTime: T0,
    cancelInFlight: false,
    createTime: T0,
    updateTime: T0,
    creator: "users/admin",
    ...over,
  };
}
const states = (o: Partial<Record<keyof typeof State, number>>) => new Map(Object.entries(o).map(([k, n]) => [State[k as keyof typeof State], n!]));

describe("job rollout decisions", () => {
  it("dispatches no more than the rate allows, whatever the tick spacing", () => {
    // 120/min = 2/s, bucket of 2 s: simulate ticks at irregular spacing for 60 s.
    let j = job({ rollout: { maxPerMinute: 120 } });
    let t = 0;
    let sent = 0;
    const gaps = [100, 1700, 300, 50, 2500, 900, 1000, 10];
    for (let i = 0; t < 60_000; i++) {
      t += gaps[i % gaps.length]!;
      const d = planStep(j, new Map(), at(t), 1000);
      sent += d.dispatch;
      j = { ...j, rateTokens: d.rateTokens, rateTime: d.rateTime, dispatchedCount: j.dispatchedCount + d.dispatch };
    }
    // 1 initial token + 2/s × 60 s, never more; a bucket capped at 2 s loses little to late ticks.
    expect(sent).toBeLessThanOrEqual(121);
    expect(sent).toBeGreaterThanOrEqual(110);
  });

  it("unlimited rate dispatches whole batches until nothing is pending", () => {
    expect(planStep(job({ targetCount: 5000 }), new Map(), T0, 1000).dispatch).toBe(1000);
    expect(planStep(job({ targetCount: 5000, dispatchedCount: 4500, skippedCount: 100 }), new Map(), T0, 1000).dispatch).toBe(400);
  });

  it("grows an exponential rate with successes, up to the cap", () => {
    const r = { maxPerMinute: 1000, exponential: { basePerMinute: 10, factor: 2, step: 50 } };
    expect(currentRatePerMinute(r, 0)).toBe(10);
    expect(currentRatePerMinute(r, 49)).toBe(10);
    expect(currentRatePerMinute(r, 50)).toBe(20);
    expect(currentRatePerMinute(r, 200)).toBe(160);
    expect(currentRatePerMinute(r, 10_000)).toBe(1000);
  });

  it("aborts only past the threshold and the minimum, skipping what is pending", () => {
    const a = { failurePercent: 2, minFinished: 50, cancelInFlight: true };
    expect(abortVerdict(a, countsOf(states({ SUCCEEDED: 45, FAILED: 4 }))).abort).toBe(false); // 49 finished
    expect(abortVerdict(a, countsOf(states({ SUCCEEDED: 49, FAILED: 1 }))).abort).toBe(false); // exactly 2 %
    expect(abortVerdict(a, countsOf(states({ SUCCEEDED: 48, TIMED_OUT: 1, REJECTED: 1, RUNNING: 10 }))).abort).toBe(true); // 4 %
    const d = planStep(job({ abort: a, dispatchedCount: 60 }), states({ SUCCEEDED: 47, FAILED: 3, QUEUED: 10 }), at(5000), 1000);
    expect(d).toMatchObject({ state: "ABORTED", dispatch: 0, skipPending: "the job was aborted", cancelInFlight: true });
    expect(d.stateReason).toMatch(/^aborted: 3 failed of 50 finished \(6\.0 %\)/);
  });

  it("completes a finite job once every target was handled and every execution ended; a continuous one runs on", () => {
    const done = states({ SUCCEEDED: 990, FAILED: 5 });
    const finite = job({ dispatchedCount: 995, skippedCount: 5 });
    expect(planStep(finite, done, at(1), 1000)).toMatchObject({ state: "COMPLETED", stateReason: "completed: 990 of 995 executions succeeded, 5 failed" });
    expect(planStep(finite, states({ SUCCEEDED: 990, RUNNING: 5 }), at(1), 1000).state).toBe("RUNNING");
    const continuous = job({ dispatchedCount: 995, skippedCount: 5, target: { kind: "selector", filterText: "", filter: { type: "true" }, continuous: true } });
    expect(planStep(continuous, done, at(1), 1000).state).toBe("RUNNING");
  });

  it("starts a scheduled job at its start time, and leaves paused jobs alone", () => {
    const s = job({ state: "SCHEDULED", startTime: at(10_000), rateTokens: 0, rateTime: undefined });
    expect(planStep(s, new Map(), at(9_999), 1000)).toMatchObject({ state: "SCHEDULED", dispatch: 0 });
    expect(planStep(s, new Map(), at(10_000), 1000)).toMatchObject({ state: "RUNNING", dispatch: 1000 });
    expect(planStep(job({ state: "PAUSED" }), new Map(), at(10_000), 1000)).toMatchObject({ state: "PAUSED", dispatch: 0 });
  });
});
