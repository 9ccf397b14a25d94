import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { CommandSchema } from "../../gen/tether/v1/command_pb.js";
import { QueryTelemetryRequestSchema } from "../../gen/tether/v1/telemetry_service_pb.js";
import { PRODUCTS } from "../../src/core/products/index.js";
import { createCallLimit } from "../../src/mcp/call-limit.js";
import { messageSchema, toolInput } from "../../src/mcp/json-schema.js";
import { errorText } from "../../src/mcp/tool-errors.js";
import { requestFrom, ToolRefusal } from "../../src/mcp/tool.js";
import { TOOLS } from "../../src/mcp/tools.js";

describe("MCP tool schemas, walked from the protobuf descriptors", () => {
  it("gives the Command oneof one arm per registered product", () => {
    const schema = messageSchema(CommandSchema) as { oneOf: Array<{ required: string[] }> };
    expect(schema.oneOf.map((a) => a.required[0])).toEqual(PRODUCTS.map((p) => p.kindName));
  });

  it("spells well-known types, enums and 64-bit integers as protobuf JSON does", () => {
    const s = toolInput(QueryTelemetryRequestSchema, { pick: ["parent", "start_time", "bucket_width", "aggregation", "page_size"], required: ["parent"] });
    const p = s.properties as Record<string, Record<string, unknown>>;
    expect(Object.keys(p)).toEqual(["parent", "start_time", "bucket_width", "aggregation", "page_size"]);
    expect(p.start_time).toMatchObject({ type: "string", format: "date-time" });
    expect(p.bucket_width).toMatchObject({ type: "string", pattern: expect.any(String) });
    expect(p.aggregation!.enum).not.toContain("AGGREGATION_UNSPECIFIED");
    expect(p.page_size).toEqual({ type: "integer" });
    expect(s.required).toEqual(["parent"]);
    expect(s.additionalProperties).toBe(false);
  });

  it("refuses to build a tool from a field the contract does not have", () => {
    expect(() => toolInput(QueryTelemetryRequestSchema, { pick: ["parent", "bucket"] })).toThrow("tether.v1.QueryTelemetryRequest has no field bucket");
  });

  it("gives every tool a one-line description and consistent annotations", () => {
    expect(new Set(TOOLS.map((t) => t.name)).size).toBe(TOOLS.length);
    for (const t of TOOLS) {
      expect(t.name).toMatch(/^[a-z]+(_[a-z]+)*$/);
      expect(t.description, t.name).not.toMatch(/\n/);
      expect(t.description.length, t.name).toBeLessThan(300);
      expect(t.inputSchema.type).toBe("object");
      if (t.annotations.readOnlyHint) expect(t.annotations.destructiveHint, t.name).toBeUndefined();
      // Destructive tools say so, and take the confirm argument the server insists on.
      if (t.needsConfirm) {
        expect(t.annotations.destructiveHint, t.name).toBe(true);
        expect(Object.keys(t.inputSchema.properties as object), t.name).toContain("confirm");
      }
    }
    expect(TOOLS.filter((t) => t.needsConfirm).map((t) => t.name)).toEqual(["delete_device", "create_job", "cancel_job"]);
  });

  it("asks for confirm only for a selector job that is not a dry run", () => {
    const job = TOOLS.find((t) => t.name === "create_job")!;
    expect(job.needsConfirm!({ job: { selector: { filter: "" } } })).toBe(true);
    expect(job.needsConfirm!({ job: { selector: { filter: "" } }, dry_run: true })).toBe(false);
    expect(job.needsConfirm!({ job: { devices: { devices: ["devices/a"] } } })).toBe(false);
  });
});

describe("MCP errors", () => {
  it("names the argument protobuf JSON parsing refused", () => {
    const refusal = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        return errorText(err);
      }
      return "";
    };
    expect(refusal(() => requestFrom(QueryTelemetryRequestSchema, { parent: 3 }))).toBe("INVALID_ARGUMENT: parent: expected string, got 3");
    expect(refusal(() => requestFrom(QueryTelemetryRequestSchema, { bucket_width: "10" }))).toBe('INVALID_ARGUMENT: not a valid Duration: "10"');
    expect(refusal(() => requestFrom(QueryTelemetryRequestSchema, { nope: 1 }))).toBe('INVALID_ARGUMENT: key "nope" is unknown in the arguments');
  });

  it("gives an API error's code and field violations, and nothing of an internal failure", () => {
    const err = new ConnectError("invalid task", Code.InvalidArgument, undefined, [
      { desc: BadRequestSchema, value: create(BadRequestSchema, { fieldViolations: [{ field: "task.command", description: "is required" }] }) },
    ]);
    expect(errorText(err)).toBe("INVALID_ARGUMENT: invalid task\n- task.command: is required");
    expect(errorText(new ConnectError("no", Code.PermissionDenied))).toBe("PERMISSION_DENIED: no");
    expect(errorText(new ToolRefusal("FAILED_PRECONDITION", "confirm"))).toBe("FAILED_PRECONDITION: confirm");
    expect(errorText(new Error("ECONNRESET at 10.0.0.3"))).toBe("INTERNAL: the call failed inside the MCP server");
  });
});

describe("MCP call limit", () => {
  it("allows a minute's worth at once, then one call per 60/rate seconds, per principal", () => {
    let now = 0;
    const limit = createCallLimit(2, () => now);
    expect([limit.take("users/a"), limit.take("users/a"), limit.take("users/a")]).toEqual([undefined, undefined, 30]);
    expect(limit.take("users/b")).toBeUndefined();
    now += 30_000;
    expect(limit.take("users/a")).toBeUndefined();
    expect(limit.take("users/a")).toBe(30);
    expect(createCallLimit(0).take("x")).toBeUndefined();
  });
});
