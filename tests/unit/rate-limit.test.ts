import { describe, expect, it } from "vitest";
import { createLogThrottle, createRateLimiter } from "../../src/core/rate-limit.js";
import { createCounters } from "../../src/core/counters.js";
import { createUplinkDecoder } from "../../src/link/uplink-decode.js";
import { createLogger } from "../../src/log.js";

describe("per-device uplink rate limit", () => {
  it("lets a burst through, then the sustained rate, per key", () => {
    let now = 0;
    const l = createRateLimiter({ ratePerS: 10, burst: 5, now: () => now });
    expect(Array.from({ length: 8 }, () => l.take("a")).filter(Boolean)).toHaveLength(5);
    expect(l.take("b")).toBe(true); // another device has its own bucket
    now += 1000; // 10 tokens, capped at the burst
    expect(Array.from({ length: 8 }, () => l.take("a")).filter(Boolean)).toHaveLength(5);
    now += 100; // one token
    expect(l.take("a")).toBe(true);
    expect(l.take("a")).toBe(false);
  });

  it("forgets idle devices and is off at rate 0", () => {
    let now = 0;
    const l = createRateLimiter({ ratePerS: 10, burst: 5, now: () => now });
    for (let i = 0; i < 1000; i++) l.take(`d${i}`);
    expect(l.size()).toBe(1000);
    now += 10_000;
    l.take("x");
    expect(l.size()).toBe(1);
    const off = createRateLimiter({ ratePerS: 0, burst: 1, now: () => now });
    expect(Array.from({ length: 100 }, () => off.take("a")).every(Boolean)).toBe(true);
  });

  it("logs at most once per interval per key", () => {
    let now = 0;
    const should = createLogThrottle(1000, () => now);
    expect([should("a"), should("a"), should("b")]).toEqual([true, false, true]);
    now += 1000;
    expect(should("a")).toBe(true);
  });

  it("the decoder drops a flood as rate_limited, never presence", () => {
    const counters = createCounters();
    const decode = createUplinkDecoder({ maxPayloadBytes: 1024, counters, log: createLogger("silent"), limit: { ratePerS: 1, burst: 3 } });
    const taken = Array.from({ length: 10 }, () => decode("tether/v1/devices/flood/metrics/temp", Buffer.from("1"))).filter(Boolean);
    expect(taken).toHaveLength(3);
    expect(counters.get("tether_uplink_dropped_total", { reason: "rate_limited" })).toBe(7);
    expect(decode("tether/v1/devices/flood/presence", Buffer.from("offline"))).toMatchObject({ kind: "presence", online: false });
  });
});
