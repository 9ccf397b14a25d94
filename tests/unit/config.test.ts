import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";

describe("loadConfig", () => {
  it("has defaults that run the embedded stack", () => {
    const c = loadConfig({}, "/srv/tether");
    expect(c.api).toEqual({ host: "127.0.0.1", port: 8443, readMaxBytes: 4 * 1024 * 1024 });
    expect(c.mqtt).toEqual({ host: "127.0.0.1", port: 8883, maxPayloadBytes: 256 * 1024 });
    expect(c.tasks).toEqual({ sweepIntervalMs: 1000, ackTimeoutMs: 10_000, maxCreatesInFlight: 512 });
    expect(c.database.url).toBeUndefined();
    expect(c.dataDir).toBe("/srv/tether/data");
    expect(c.certsDir).toBe("/srv/tether/certs");
    expect(Object.isFrozen(c.api)).toBe(true);
  });
  it("switches to PostgreSQL with DATABASE_URL", () => {
    const c = loadConfig({ DATABASE_URL: "postgres://u@db/tether" });
    expect(c.database).toEqual({ url: "postgres://u@db/tether", poolSize: 10 });
  });
  it("names the variable and the accepted range on bad input", () => {
    expect(() => loadConfig({ TETHER_PORT: "http" })).toThrow(/TETHER_PORT=http: expected an integer between 0 and 65535/);
    expect(() => loadConfig({ LOG_LEVEL: "loud" })).toThrow(/LOG_LEVEL=loud/);
  });
});
