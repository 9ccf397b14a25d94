import pino from "pino";
import { describe, expect, it } from "vitest";
import { createCounters } from "../../src/core/counters.js";
import { createDependencyMonitor } from "../../src/ops/dependencies.js";
import { createMetrics } from "../../src/ops/metrics.js";

describe("metrics", () => {
  it("exports the core's counters with their labels, even when a new label appears later", async () => {
    const counters = createCounters();
    const m = createMetrics({ counters: counters.entries, uplinkQueueDepth: () => 3, tasksByState: async () => ({ QUEUED: 2, SUCCEEDED: 5 }) });
    counters.inc("tether_uplink_dropped_total", { reason: "malformed" });
    counters.inc("tether_uplink_dropped_total", { reason: "malformed" });
    expect(await m.scrape()).toContain('tether_uplink_dropped_total{reason="malformed"} 2');
    counters.inc("tether_uplink_dropped_total", { reason: "oversized", transport: "mqtt" });
    const text = await m.scrape();
    expect(text).toContain('tether_uplink_dropped_total{reason="oversized",transport="mqtt"} 1');
    expect(text).toContain('tether_uplink_dropped_total{reason="malformed"} 2');
    expect(text).toContain("# HELP tether_uplink_dropped_total Uplink messages the bridge dropped");
    expect(text).toContain('tether_queue_depth{queue="uplink"} 3');
    expect(text).toContain('tether_tasks{state="SUCCEEDED"} 5');
    m.observeRpc("tether.v1.TaskService", "CreateTask", "ok", 0.004);
    expect(await m.scrape()).toContain('tether_rpc_duration_seconds_bucket{le="0.005",service="tether.v1.TaskService",method="CreateTask",code="ok"} 1');
  });

  it("keeps the last task counts when the database does not answer a scrape", async () => {
    let fail = false;
    const m = createMetrics({ counters: () => [], tasksByState: async () => (fail ? Promise.reject(new Error("down")) : { RUNNING: 4 }) });
    expect(await m.scrape()).toContain('tether_tasks{state="RUNNING"} 4');
    fail = true;
    expect(await m.scrape()).toContain('tether_tasks{state="RUNNING"} 4');
  });
});

describe("dependency monitor", () => {
  it("publishes each dependency and the whole server, and treats a hung probe as down", async () => {
    const statuses = new Map<string, string>();
    const mon = createDependencyMonitor({ setStatus: (s, st) => statuses.set(s, st), intervalMs: 50, timeoutMs: 100, log: pino({ level: "silent" }) });
    let dbUp = true;
    mon.add("tether.database", () => (dbUp ? Promise.resolve(true) : new Promise<boolean>(() => {})));
    mon.add("tether.broker", () => true);
    expect(statuses.get("")).toBe("NOT_SERVING"); // nothing probed yet
    await mon.check();
    expect(Object.fromEntries(statuses)).toEqual({ "": "SERVING", "tether.database": "SERVING", "tether.broker": "SERVING" });
    dbUp = false;
    await mon.check();
    expect(Object.fromEntries(statuses)).toEqual({ "": "NOT_SERVING", "tether.database": "NOT_SERVING", "tether.broker": "SERVING" });
    expect(mon.ready()).toBe(false);
    expect(mon.statuses()).toEqual({ "tether.database": false, "tether.broker": true });
  });
});
