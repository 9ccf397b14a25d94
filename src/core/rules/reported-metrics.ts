import { type DescMessage, fromJson, type JsonValue, type Message, ScalarType } from "@bufbuild/protobuf";

/** One numeric value read from a device's reported state, named by its proto field path. */
export interface MetricValue {
  metric: string;
  value: number;
}

const MAX_DEPTH = 4;

/**
 * The numeric fields of a reported-state message as metrics: `water_level_percent`,
 * `current_brew.progress_percent`, `color.red`. Numbers as they are, booleans as 1 and 0, enums
 * as their number; an unset optional field or message yields nothing, an implicit zero yields 0
 * (so "water level below 10" sees an empty tank). Strings, bytes, lists and maps are skipped.
 */
export function reportedMetrics(schema: DescMessage, message: Message, prefix = "", depth = 0): MetricValue[] {
  const out: MetricValue[] = [];
  const m = message as unknown as Record<string, unknown>;
  for (const f of schema.fields) {
    const v = m[f.localName];
    if (v === undefined || v === null) continue;
    const metric = prefix + f.name;
    if (f.fieldKind === "scalar") {
      const n = scalarNumber(f.scalar, v);
      if (n !== undefined) out.push({ metric, value: n });
    } else if (f.fieldKind === "enum") {
      out.push({ metric, value: Number(v) });
    } else if (f.fieldKind === "message" && depth < MAX_DEPTH) {
      out.push(...reportedMetrics(f.message, v as Message, `${metric}.`, depth + 1));
    }
  }
  return out;
}

/**
 * The metric names `reportedMetrics` can yield for `schema`, whatever the values: what an event rule
 * on this product's reported state may name.
 */
export function reportedMetricNames(schema: DescMessage, prefix = "", depth = 0): string[] {
  const out: string[] = [];
  for (const f of schema.fields) {
    const metric = prefix + f.name;
    if (f.fieldKind === "scalar" && f.scalar !== ScalarType.STRING && f.scalar !== ScalarType.BYTES) out.push(metric);
    else if (f.fieldKind === "enum") out.push(metric);
    else if (f.fieldKind === "message" && depth < MAX_DEPTH) out.push(...reportedMetricNames(f.message, `${metric}.`, depth + 1));
  }
  return out;
}

/**
 * The same from protobuf JSON. With the product's reported-state schema, fields are read as in
 * `reportedMetrics` (implicit zeros included, which protobuf JSON omits). Without one, every
 * number and boolean in the JSON is taken, lowerCamelCase keys turned into snake_case.
 */
export function reportedJsonMetrics(json: JsonValue, schema?: DescMessage): MetricValue[] {
  if (schema) return reportedMetrics(schema, fromJson(schema, json, { ignoreUnknownFields: true }));
  const out: MetricValue[] = [];
  const walk = (v: JsonValue, path: string, depth: number) => {
    if (typeof v === "number") out.push({ metric: path, value: v });
    else if (typeof v === "boolean") out.push({ metric: path, value: v ? 1 : 0 });
    else if (v && typeof v === "object" && !Array.isArray(v) && depth < MAX_DEPTH) {
      for (const [k, x] of Object.entries(v)) walk(x, path ? `${path}.${snake(k)}` : snake(k), depth + 1);
    }
  };
  walk(json, "", 0);
  return out.filter((m) => m.metric !== "");
}

function scalarNumber(type: ScalarType, v: unknown): number | undefined {
  switch (type) {
    case ScalarType.STRING:
    case ScalarType.BYTES:
      return undefined;
    case ScalarType.BOOL:
      return v ? 1 : 0;
    default:
      return Number(v);
  }
}

function snake(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}
