import { describe, expect, it } from "vitest";
import { createMemoryFeed } from "../../src/bus/memory-feed.js";
import { createSessionRevocations } from "../../src/core/auth/session-revocations.js";
import { eventually } from "../helpers/devices.js";
import { fakeClock } from "../helpers/fake-clock.js";

const silent = { debug() {}, info() {}, warn() {}, error() {} };
const MIN = 60_000;

/** The `session_revocations` table, in memory: what two replicas share. */
function table() {
  const rows = new Map<string, Date>();
  return {
    rows,
    revokedSessions: async (since: Date) => [...rows].filter(([, t]) => t >= since).map(([s]) => s),
    pruneRevokedSessions: async (before: Date) => {
      for (const [s, t] of rows) if (t < before) rows.delete(s);
    },
  };
}

describe("ended sessions", () => {
  it("refuses a session ended here at once, and on a replica sharing the feed at once", async () => {
    const clock = fakeClock("2026-01-01T00:00:00Z");
    const repo = table();
    const feed = createMemoryFeed<string[]>();
    const here = createSessionRevocations({ repo, feed, clock, log: silent, windowMs: 15 * MIN, pollMs: 60_000 });
    const there = createSessionRevocations({ repo, feed, clock, log: silent, windowMs: 15 * MIN, pollMs: 60_000 });
    await here.start();
    await there.start();
    expect(here.isEnded("s1")).toBe(false);
    here.ended(["s1"]);
    expect(here.isEnded("s1")).toBe(true);
    expect(there.isEnded("s1")).toBe(true);
    expect(there.isEnded("s2")).toBe(false);
    await here.stop();
    await there.stop();
  });

  it("a replica that missed the feed learns from the table within the poll, and at start", async () => {
    const clock = fakeClock("2026-01-01T00:00:00Z");
    const repo = table();
    repo.rows.set("before-start", clock.now());
    // Its own feed: nothing published elsewhere reaches it, only the table does.
    const replica = createSessionRevocations({ repo, feed: createMemoryFeed(), clock, log: silent, windowMs: 15 * MIN, pollMs: 100 });
    await replica.start();
    expect(replica.isEnded("before-start")).toBe(true);
    repo.rows.set("while-running", clock.now());
    await eventually(async () => replica.isEnded("while-running"), 5000, "the poll to read the table");
    await replica.stop();
  });

  it("forgets a session once every token of it has expired, and prunes the table", async () => {
    const clock = fakeClock("2026-01-01T00:00:00Z");
    const repo = table();
    const feed = createMemoryFeed<string[]>();
    const r = createSessionRevocations({ repo, feed, clock, log: silent, windowMs: 15 * MIN, pollMs: 100 });
    await r.start();
    repo.rows.set("old", clock.now());
    r.ended(["old"]);
    expect(r.size()).toBe(1);
    clock.advance(16 * MIN);
    await eventually(async () => r.size() === 0 && repo.rows.size === 0, 5000, "the old session to be forgotten");
    expect(r.isEnded("old")).toBe(false);
    await r.stop();
  });

  it("keeps what it knows when the table cannot be read, and reports it", async () => {
    const clock = fakeClock("2026-01-01T00:00:00Z");
    const errors: unknown[] = [];
    const repo = table();
    let fail = false;
    const flaky = { ...repo, revokedSessions: async (since: Date) => (fail ? Promise.reject(new Error("db down")) : repo.revokedSessions(since)) };
    const r = createSessionRevocations({
      repo: flaky,
      feed: createMemoryFeed(),
      clock,
      log: { ...silent, error: (o: unknown) => void errors.push(o) },
      windowMs: 15 * MIN,
      pollMs: 100,
    });
    await r.start();
    r.ended(["s"]);
    fail = true;
    await eventually(async () => errors.length > 0, 5000, "a failed poll");
    expect(r.isEnded("s")).toBe(true);
    await r.stop();
  });

  it("tells watchers once when their session ends (at once if it already has); unwatched ones hear nothing", async () => {
    const clock = fakeClock("2026-01-01T00:00:00Z");
    const r = createSessionRevocations({ repo: table(), feed: createMemoryFeed(), clock, log: silent, windowMs: 15 * MIN, pollMs: 60_000 });
    const heard: string[] = [];
    r.watch("a", () => heard.push("a1"));
    const stop = r.watch("a", () => heard.push("a2"));
    r.watch("b", () => heard.push("b"));
    stop();
    r.ended(["a"]);
    r.ended(["a"]);
    expect(heard).toEqual(["a1"]);
    r.watch("a", () => heard.push("late"));
    expect(heard).toEqual(["a1", "late"]);
    await r.stop();
  });
});
