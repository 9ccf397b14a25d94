import { describe, expect, it } from "vitest";
import { backoffMs, decideReserve, decideSuccess, type LoginLimits, type ThrottleCounters } from "../../src/core/auth/rate-limit.js";
import { parse } from "../../src/api/proxy-protocol.js";
import { Command, IPv4Address, IPv4ProxyAddress, IPv6Address, IPv6ProxyAddress, TransportProtocol, V2ProxyProtocol } from "proxy-protocol-js";

const limits: LoginLimits = { freeAttempts: 3, backoffBaseMs: 1000, backoffMaxMs: 8000, perUser: 5, perAddress: 6, windowMs: 60_000 };
const who = { user: "alice", address: "10.0.0.1" };

/** Applies decisions to an in-memory copy of the three counters, as the store would. */
function run(steps: number, knownGood = false, start = 0) {
  const c: ThrottleCounters = {};
  const out = [];
  for (let i = 0; i < steps; i++) {
    const d = decideReserve(c, knownGood, new Date(start), limits, who);
    for (const [k, v] of Object.entries(d.write ?? {})) c[k as keyof ThrottleCounters] = v ?? undefined;
    out.push(d.result);
  }
  return { c, out };
}

describe("login throttle policy", () => {
  it("lets the free attempts through, then doubles the wait up to the maximum", () => {
    expect([1, 2, 3, 4, 5, 6, 7, 40].map((n) => backoffMs(n, limits))).toEqual([0, 0, 1000, 2000, 4000, 8000, 8000, 8000]);
    const { out } = run(5);
    expect(out.map((r) => r.ok)).toEqual([true, true, true, false, false]);
    expect(out[3]).toEqual({ ok: false, by: "pair", retryMs: 1000 });
  });

  it("counts the user and address ceilings only for addresses not known good", () => {
    const { c } = run(2, false);
    expect(c.user?.failures).toBe(2);
    expect(c.address?.failures).toBe(2);
    const known = run(2, true);
    expect(known.c.user).toBeUndefined();
    // A full ceiling refuses a stranger but not a known-good pair.
    const full: ThrottleCounters = { user: { failures: 5, nextTime: new Date(0), resetTime: new Date(30_000) } };
    expect(decideReserve(full, false, new Date(0), limits, who).result).toEqual({ ok: false, by: "user", retryMs: 30_000 });
    expect(decideReserve(full, true, new Date(0), limits, who).result.ok).toBe(true);
    // Expired counters start again.
    expect(decideReserve(full, false, new Date(30_000), limits, who).result.ok).toBe(true);
  });

  it("a success resets the pair and refunds the ceilings it counted", () => {
    const { c, out } = run(2, false);
    const r = out[1]!;
    if (!r.ok) throw new Error("expected a reservation");
    const d = decideSuccess(c, r.reservation, new Date(0));
    expect(d.write).toEqual({ pair: null, user: { ...c.user, failures: 1 }, address: { ...c.address, failures: 1 } });
    expect(d.remember).toBe(true);
  });
});

describe("PROXY header framing", () => {
  const v2 = (cmd: Command, addr: IPv4ProxyAddress | IPv6ProxyAddress) => Buffer.from(new V2ProxyProtocol(cmd, TransportProtocol.STREAM, addr).build());
  const v4 = new IPv4ProxyAddress(IPv4Address.createFrom([203, 0, 113, 7]), 1, IPv4Address.createFrom([10, 0, 0, 1]), 2);

  it("waits for a whole header, then names the client and leaves the rest", () => {
    const h = Buffer.concat([v2(Command.PROXY, v4), Buffer.from([0x16, 0x03, 0x01])]);
    for (let n = 0; n < h.length - 3; n++) expect(parse(h.subarray(0, n))).toBe("more");
    expect(parse(h)).toEqual({ consumed: h.length - 3, client: "203.0.113.7" });
    const v6 = new IPv6ProxyAddress(
      IPv6Address.createFrom([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
      1,
      IPv6Address.createWithEmptyAddress(),
      2,
    );
    expect(parse(v2(Command.PROXY, v6))).toMatchObject({ client: "2001:db8::1" });
    expect(parse(v2(Command.LOCAL, v4))).toEqual({ consumed: 16 + 12 }); // a health check: the peer is the client
    expect(parse(Buffer.from("PROXY TCP4 198.51.100.9 10.0.0.1 5 6\r\n\x16"))).toEqual({
      consumed: "PROXY TCP4 198.51.100.9 10.0.0.1 5 6\r\n".length,
      client: "198.51.100.9",
    });
    expect(parse(Buffer.from("PROXY UNKNOWN\r\n"))).toEqual({ consumed: 15 });
  });

  it("passes TLS through and refuses malformed or oversized headers", () => {
    expect(parse(Buffer.from([0x16, 0x03, 0x01, 0x00]))).toEqual({ consumed: 0 });
    const big = v2(Command.PROXY, v4);
    big.writeUInt16BE(5000, 14);
    expect(() => parse(big)).toThrow(/v2 header of 5016 bytes/);
    expect(() => parse(Buffer.from(`PROXY TCP4 ${"1".repeat(120)}`))).toThrow(/without CRLF/);
    expect(() => parse(Buffer.from("PROXY TCP4 not-an-ip 10.0.0.1 5 6\r\n"))).toThrow(/bad source address/);
    expect(() => parse(Buffer.from("PROXY garbage\r\n"))).toThrow(/malformed v1/);
  });
});
