import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { buildFilter } from "../../console/src/filter.js";
import { fieldsUnder, readable } from "../../console/src/errors.js";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { loadConfig } from "../../src/config.js";
import { parseDeviceFilter } from "../../src/core/devices/device-filter.js";

describe("web console logic", () => {
  it("builds ListDevices filters that the server's parser accepts", () => {
    const f = buildFilter("coffee_machine", 'room=kitchen, floor, note=say "hi"', "true");
    expect(f).toBe('kind = "coffee_machine" AND labels.room = "kitchen" AND labels.floor:* AND labels.note = "say \\"hi\\"" AND online = true');
    expect(() => parseDeviceFilter(f)).not.toThrow();
    expect(buildFilter("", "", "")).toBe("");
  });

  it("turns a gRPC status into a sentence, a code and per-field reasons", () => {
    const err = new ConnectError("rule.cron.expression: invalid cron expression", Code.InvalidArgument, undefined, [
      { desc: BadRequestSchema, value: create(BadRequestSchema, { fieldViolations: [{ field: "rule.cron.expression", description: "invalid cron expression" }, { field: "rule_id", description: "must be lowercase" }] }) },
    ]);
    const r = readable(err);
    expect(r.code).toBe("INVALID_ARGUMENT");
    expect(r.message).toBe("rule.cron.expression: invalid cron expression");
    expect(fieldsUnder(r.fields, "rule.cron")).toEqual(["expression: invalid cron expression"]);
    expect(fieldsUnder(r.fields, "rule_id")).toEqual(["must be lowercase"]);
    expect(readable(new ConnectError("devices/x", Code.NotFound)).message).toBe("Not found: devices/x");
    expect(loadConfig({}).consoleDir.endsWith("console/dist")).toBe(true);
  });
});
