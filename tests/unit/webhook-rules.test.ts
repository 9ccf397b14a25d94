import { describe, expect, it } from "vitest";
import { isExhausted, retryDelayMs } from "../../src/core/webhooks/backoff.js";
import { createCircuitBreaker } from "../../src/core/webhooks/circuit-breaker.js";
import { signatureHeader, verifySignature } from "../../src/core/webhooks/signature.js";
import { blockedAddress, createUrlPolicy } from "../../src/webhooks/address-policy.js";

describe("webhook URL policy", () => {
  const prod = createUrlPolicy({ allowHttp: false });
  const dev = createUrlPolicy({ allowHttp: true });
  it("refuses http:// without TETHER_WEBHOOK_ALLOW_HTTP, and accepts it with", async () => {
    expect(await prod.check("http://192.0.2.10/hook")).toContain("TETHER_WEBHOOK_ALLOW_HTTP=1");
    expect(await dev.check("http://192.0.2.10/hook")).toBeUndefined();
    expect(await prod.check("ftp://192.0.2.10/")).toBe("must be an https:// URL");
    expect(await prod.check("not a url")).toContain("is not a URL");
    expect(await prod.check("https://u:p@192.0.2.10/")).toContain("user name or password");
  });
  it("refuses hosts resolving to loopback or link-local (SSRF), unless in development", async () => {
    for (const url of ["https://127.0.0.1/", "https://localhost:8443/", "https://[::1]/", "https://169.254.169.254/latest", "https://[::ffff:127.0.0.1]/"]) {
      expect(await prod.check(url), url).toMatch(/loopback, link-local/);
    }
    expect(await dev.check("https://127.0.0.1/")).toBeUndefined();
    expect(await prod.check("https://192.0.2.10/")).toBeUndefined(); // private and documentation ranges stay allowed
    expect(blockedAddress("10.1.2.3")).toBeUndefined();
    expect(blockedAddress("fe80::1")).toBeDefined();
  });
});

describe("webhook signatures", () => {
  const body = Buffer.from('{"id":"x"}');
  it("signs t.body with every valid secret; a receiver verifies any one, refuses tampering and old timestamps", () => {
    const h = signatureHeader(["whsec_new", "whsec_old"], 1_700_000_000, body);
    expect(h).toMatch(/^t=1700000000,v1=[0-9a-f]{64},v1=[0-9a-f]{64}$/);
    expect(verifySignature(h, "whsec_new", body, 1_700_000_010)).toBe(true);
    expect(verifySignature(h, "whsec_old", body, 1_700_000_010)).toBe(true);
    expect(verifySignature(h, "whsec_other", body, 1_700_000_010)).toBe(false);
    expect(verifySignature(h, "whsec_new", Buffer.from('{"id":"y"}'), 1_700_000_010)).toBe(false);
    expect(verifySignature(h, "whsec_new", body, 1_700_000_000 + 301)).toBe(false);
  });
});

describe("webhook retries", () => {
  const p = { baseMs: 1000, maxMs: 60_000, maxAttempts: 5, maxAgeMs: 3_600_000 };
  it("backs off exponentially with jitter between half and all of the nominal delay, capped", () => {
    expect(retryDelayMs(p, 1, () => 0)).toBe(500);
    expect(retryDelayMs(p, 1, () => 1)).toBe(1000);
    expect(retryDelayMs(p, 3, () => 1)).toBe(4000);
    expect(retryDelayMs(p, 20, () => 1)).toBe(60_000);
  });
  it("gives up after the attempts or the maximum age", () => {
    const created = new Date("2026-01-01T00:00:00Z");
    expect(isExhausted(p, 4, created, new Date("2026-01-01T00:10:00Z"))).toBe(false);
    expect(isExhausted(p, 5, created, new Date("2026-01-01T00:10:00Z"))).toBe(true);
    expect(isExhausted(p, 1, created, new Date("2026-01-01T01:00:00Z"))).toBe(true);
  });
  it("the circuit breaker opens after N failures, lets one probe through after the cooldown, closes on success", () => {
    const b = createCircuitBreaker({ failures: 3, cooldownMs: 1000, maxCooldownMs: 8000 });
    expect(b.allowance(0, 8)).toBe(8);
    for (let i = 0; i < 3; i++) b.record(false, 0);
    expect(b.isOpen(10)).toBe(true);
    expect(b.allowance(500, 8)).toBe(0);
    expect(b.allowance(1000, 8)).toBe(1);
    expect(b.allowance(1001, 8)).toBe(0); // the probe is in flight
    b.record(false, 1100); // probe failed: the cooldown doubles
    expect(b.allowance(2200, 8)).toBe(0);
    expect(b.allowance(3100, 8)).toBe(1);
    b.record(true, 3200);
    expect(b.allowance(3200, 8)).toBe(8);
  });
});
