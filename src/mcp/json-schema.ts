import { type DescEnum, type DescField, type DescMessage, ScalarType } from "@bufbuild/protobuf";

/** A JSON Schema (draft 2020-12 subset) as MCP tools declare their input. */
export type JsonSchema = { [key: string]: unknown };

/** Well-known types as their protobuf JSON forms. */
const WELL_KNOWN: Record<string, JsonSchema> = {
  "google.protobuf.Timestamp": { type: "string", format: "date-time", description: "RFC 3339, e.g. 2026-01-31T12:00:00Z" },
  "google.protobuf.Duration": { type: "string", pattern: "^-?[0-9]+(\\.[0-9]+)?s$", description: 'seconds with an "s", e.g. "90s"' },
  "google.protobuf.FieldMask": { type: "string", description: "comma-separated field paths" },
  "google.protobuf.Empty": { type: "object" },
  "google.protobuf.Struct": { type: "object" },
  "google.protobuf.Value": {},
  "google.protobuf.BoolValue": { type: "boolean" },
  "google.protobuf.StringValue": { type: "string" },
  "google.protobuf.Int32Value": { type: "integer" },
  "google.protobuf.UInt32Value": { type: "integer", minimum: 0 },
  "google.protobuf.DoubleValue": { type: "number" },
  "google.protobuf.FloatValue": { type: "number" },
};

function scalar(t: ScalarType): JsonSchema {
  switch (t) {
    case ScalarType.STRING:
      return { type: "string" };
    case ScalarType.BYTES:
      return { type: "string", contentEncoding: "base64" };
    case ScalarType.BOOL:
      return { type: "boolean" };
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return { type: "number" };
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      // protobuf JSON writes 64-bit integers as strings and reads either.
      return { type: ["integer", "string"] };
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return { type: ["integer", "string"], minimum: 0 };
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return { type: "integer", minimum: 0 };
    default:
      return { type: "integer" };
  }
}

/** An enum as its value names (protobuf JSON's form), the unused zero value left out. */
function enumSchema(e: DescEnum): JsonSchema {
  const values = e.values.filter((v) => v.number !== 0 || !v.name.endsWith("_UNSPECIFIED")).map((v) => v.name);
  return { type: "string", enum: values };
}

/** How deep a schema is spelled out: deeper (or recursive) messages are plain objects. */
const MAX_DEPTH = 8;

function fieldValue(f: DescField, depth: number, seen: ReadonlySet<string>): JsonSchema {
  switch (f.fieldKind) {
    case "scalar":
      return scalar(f.scalar);
    case "enum":
      return enumSchema(f.enum);
    case "message":
      return messageSchema(f.message, { depth: depth + 1, seen });
    case "list":
      return {
        type: "array",
        items: f.listKind === "scalar" ? scalar(f.scalar) : f.listKind === "enum" ? enumSchema(f.enum) : messageSchema(f.message, { depth: depth + 1, seen }),
      };
    case "map":
      return {
        type: "object",
        additionalProperties:
          f.mapKind === "scalar" ? scalar(f.scalar) : f.mapKind === "enum" ? enumSchema(f.enum) : messageSchema(f.message, { depth: depth + 1, seen }),
      };
  }
}

export interface SchemaOptions {
  /** Only these fields (proto names), in this order. */
  pick?: readonly string[];
  /** Leave these fields out (output-only fields of a resource, say). */
  omit?: readonly string[];
  depth?: number;
  seen?: ReadonlySet<string>;
}

/**
 * The JSON Schema of a message's protobuf JSON form, walked from its protobuf-es descriptor, so a
 * field or product added to the contract shows in the tools without editing them. Properties use
 * the proto field names (`page_size`), which protobuf JSON parsing accepts as it does camelCase.
 * A message that is one oneof (Command: one arm per product) is `oneOf` its arms; a oneof among
 * other fields says in its description that one of its fields may be set.
 */
export function messageSchema(desc: DescMessage, o: SchemaOptions = {}): JsonSchema {
  const known = WELL_KNOWN[desc.typeName];
  if (known) return { ...known };
  const depth = o.depth ?? 0;
  if (depth > MAX_DEPTH || o.seen?.has(desc.typeName)) return { type: "object", description: desc.typeName };
  const seen = new Set(o.seen ?? []).add(desc.typeName);
  // A picked or omitted field the message does not have is a tool out of step with the contract:
  // fail when the tools are built (tests/unit/mcp-tools.test.ts builds them all), not silently.
  const field = (n: string) => {
    const f = desc.fields.find((x) => x.name === n);
    if (!f) throw new Error(`${desc.typeName} has no field ${n}`);
    return f;
  };
  for (const n of o.omit ?? []) field(n);
  const fields = (o.pick ? o.pick.map(field) : desc.fields).filter((f) => !o.omit?.includes(f.name));
  const props = (list: readonly DescField[]) => Object.fromEntries(list.map((f) => [f.name, fieldValue(f, depth, seen)]));
  const only = desc.oneofs.length === 1 && desc.oneofs[0]!.fields.length === fields.length ? desc.oneofs[0] : undefined;
  if (only) {
    return {
      type: "object",
      description: `${desc.typeName}: exactly one of ${only.fields.map((f) => f.name).join(", ")}`,
      oneOf: only.fields.map((f) => ({ type: "object", properties: props([f]), required: [f.name], additionalProperties: false })),
    };
  }
  const groups = desc.oneofs.filter((g) => g.fields.some((f) => fields.includes(f)));
  return {
    type: "object",
    ...(groups.length > 0 ? { description: groups.map((g) => `at most one of ${g.fields.map((f) => f.name).join(", ")}`).join("; ") } : {}),
    properties: props(fields),
    additionalProperties: false,
  };
}

/**
 * A tool's input schema: the picked fields of a request message, plus the MCP layer's own
 * arguments (`confirm`, `dry_run`, `wait_seconds`), with the required ones named.
 */
export function toolInput(
  desc: DescMessage | undefined,
  o: { pick?: readonly string[]; extra?: Record<string, JsonSchema>; required?: readonly string[] } = {},
): JsonSchema & { type: "object" } {
  const base = desc ? messageSchema(desc, { pick: o.pick ?? [] }) : { properties: {} };
  return {
    type: "object",
    properties: { ...(base.properties as Record<string, JsonSchema>), ...(o.extra ?? {}) },
    ...(o.required && o.required.length > 0 ? { required: [...o.required] } : {}),
    additionalProperties: false,
  };
}
