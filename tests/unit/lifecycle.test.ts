import { afterEach, describe, expect, it, vi } from "vitest";
import { createAppLifecycle } from "../../src/app/lifecycle.js";

/** A logger that keeps what was logged (level, fields, message). */
function capture() {
  const lines: Array<{ level: string; fields: Record<string, unknown>; msg: string }> = [];
  const at = (level: string) => (fields: Record<string, unknown>, msg: string) => void lines.push({ level, fields, msg });
  const log = { info: at("info"), error: at("error"), warn: at("warn"), debug: at("debug") };
  return { lines, log: log as never };
}

afterEach(() => {
  vi.useRealTimers();
});

describe("app lifecycle", () => {
  it("stops in reverse start order, a reserved slot at its place, and logs each step", async () => {
    const c = capture();
    const life = createAppLifecycle(c.log);
    const order: string[] = [];
    life.add({ name: "database", stop: () => void order.push("database") });
    const fillIntake = life.reserve("intake");
    life.add({ name: "bridge", stop: async () => void order.push("bridge") });
    fillIntake(() => void order.push("intake"));
    await life.stop();
    expect(order).toEqual(["bridge", "intake", "database"]);
    expect(c.lines.map((l) => [l.msg, l.fields.step])).toEqual([
      ["stopped", "bridge"],
      ["stopped", "intake"],
      ["stopped", "database"],
    ]);
    expect(c.lines.every((l) => typeof l.fields.ms === "number")).toBe(true);
  });

  it("logs a step's own done message, so the database's flush is the last line of a clean stop", async () => {
    const c = capture();
    const life = createAppLifecycle(c.log);
    life.add({ name: "database", stop: () => {}, done: "database flushed to disk and closed" });
    life.add({ name: "api", stop: () => {} });
    await life.stop();
    expect(c.lines.map((l) => [l.msg, l.fields.step])).toEqual([
      ["stopped", "api"],
      ["database flushed to disk and closed", "database"],
    ]);
  });

  it("cuts off a hung step at its bound and still runs the rest", async () => {
    vi.useFakeTimers();
    const c = capture();
    const life = createAppLifecycle(c.log, 60_000);
    const order: string[] = [];
    life.add({ name: "database", stop: () => void order.push("database") });
    life.add({ name: "hung broker", stop: () => new Promise<void>(() => {}), timeoutMs: 1000 });
    life.add({ name: "api", stop: () => void order.push("api") });
    const stopped = life.stop();
    await vi.advanceTimersByTimeAsync(999);
    expect(order).toEqual(["api"]); // still waiting on the broker
    await vi.advanceTimersByTimeAsync(1);
    await stopped;
    expect(order).toEqual(["api", "database"]);
    expect(c.lines.find((l) => l.fields.step === "hung broker")).toMatchObject({
      level: "error",
      msg: "shutdown step timed out; continuing",
      fields: { timeoutMs: 1000 },
    });
  });

  it("logs a failing step and still runs the rest", async () => {
    const c = capture();
    const life = createAppLifecycle(c.log);
    const order: string[] = [];
    life.add({ name: "database", stop: () => void order.push("database") });
    life.add({
      name: "sync throw",
      stop: () => {
        throw new Error("boom");
      },
    });
    life.add({
      name: "async reject",
      stop: async () => {
        throw new Error("bang");
      },
    });
    await life.stop();
    expect(order).toEqual(["database"]);
    const errors = c.lines.filter((l) => l.msg === "error during shutdown");
    expect(errors.map((l) => [l.fields.step, (l.fields.err as Error).message])).toEqual([
      ["async reject", "bang"],
      ["sync throw", "boom"],
    ]);
  });

  it("runs the steps once however often stop is called", async () => {
    const c = capture();
    const life = createAppLifecycle(c.log);
    let stops = 0;
    life.add({ name: "database", stop: () => void stops++ });
    const first = life.stop();
    expect(life.stop()).toBe(first);
    await first;
    await life.stop();
    expect(stops).toBe(1);
    expect(() => life.add({ name: "late", stop: () => {} })).toThrow(/stopping/);
  });
});
