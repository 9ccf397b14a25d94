import { describe, expect, it } from "vitest";
import { isPostgresClosedSocketWrite } from "../../src/store/driver-guard.js";

describe("postgres.js closed-socket write guard", () => {
  it("recognises only the driver's nextWrite crash", () => {
    const bug = new TypeError("Cannot read properties of null (reading 'write')");
    bug.stack = `${bug.message}\n    at Immediate.nextWrite (file:///app/node_modules/postgres/src/connection.js:255:22)\n    at process.processImmediate (node:internal/timers:483:21)`;
    expect(isPostgresClosedSocketWrite(bug)).toBe(true);
    const ours = new TypeError("Cannot read properties of null (reading 'write')");
    ours.stack = `${ours.message}\n    at nextWrite (file:///app/src/link/mqtt-bridge.ts:1:1)`;
    expect(isPostgresClosedSocketWrite(ours)).toBe(false);
    expect(isPostgresClosedSocketWrite(new Error("read ECONNRESET"))).toBe(false);
  });
});
