import type { DescField, DescMessage } from "@bufbuild/protobuf";
import { ScalarType } from "@bufbuild/protobuf";
import { FeatureSet_FieldPresence } from "@bufbuild/protobuf/wkt";
import { PRODUCTS, productByKindName } from "../../products/index.js";
import type { Comparison, Op, StateComparison, StateValueType } from "./filter-ast.js";
import { isSemver } from "../../semver.js";

/** A restriction as written: the field path, the comparator and the literal. */
export interface RawRestriction {
  field: string;
  op: Op | ":";
  value: string;
}

/** Throws the caller's InvalidArgument for this restriction, with `why`. */
export type Fail = (why: string) => never;

const LABEL_KEY = /^[A-Za-z][A-Za-z0-9_.-]{0,62}$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;
const ORDER: readonly string[] = ["<", "<=", ">", ">="];
/** Nested messages a state field path may go through, as for event rules' reported metrics. */
const MAX_STATE_DEPTH = 4;

/** What a person may filter on, for error messages. */
export function fieldList(): string {
  const k = PRODUCTS[0]!.kindName;
  return `name, kind, owner, display_name, online, create_time, last_seen_time, firmware_version, labels.<key>, <kind>.reported.<field> (e.g. ${k}.reported.…)`;
}

/** Resolves one restriction's field and checks its comparator and value against the field's type. */
export function resolveRestriction(r: RawRestriction, fail: Fail): Comparison {
  const { field, op, value } = r;
  const has = op === ":";
  if (has && value !== "*") fail(`"${field}:" only takes "*" (${field}:* means it has a value)`);
  const equality = (what: string) => {
    if (op !== "=" && op !== "!=") fail(`${what} supports only = and !=`);
    return op;
  };
  switch (field) {
    case "name": {
      const o = equality("name");
      const m = /^devices\/([a-z][a-z0-9-]{0,62})$/.exec(value);
      if (!m) fail(`name must be "devices/{device}", not "${value.slice(0, 80)}"`);
      return { type: "id", op: o, value: m[1]! };
    }
    case "kind": {
      const o = equality("kind");
      if (!productByKindName(value)) fail(`unknown kind "${value.slice(0, 80)}"; known kinds: ${PRODUCTS.map((p) => p.kindName).join(", ")}`);
      return { type: "text", field: "kind", op: o, value };
    }
    case "owner":
    case "display_name":
      return { type: "text", field, op: equality(field), value };
    case "online": {
      const o = equality("online");
      if (value !== "true" && value !== "false") fail("online must be true or false");
      return { type: "online", op: o, value: value === "true" };
    }
    case "create_time":
    case "last_seen_time":
      return { type: "time", field, op: has ? "has" : op, value: has ? undefined : timestamp(value, field, fail) };
    case "firmware_version":
      if (!has && ORDER.includes(op) && !isSemver(value)) {
        fail(`"${value.slice(0, 80)}" is not a semantic version (MAJOR.MINOR.PATCH, e.g. 1.10.0): ${op} compares versions`);
      }
      return { type: "firmware", op: has ? "has" : op, value: has ? undefined : value };
  }
  if (field.startsWith("labels.")) {
    const key = field.slice("labels.".length);
    if (!LABEL_KEY.test(key)) fail(`"${key.slice(0, 80)}" is not a label key (a letter, then up to 62 letters, digits, _ . -)`);
    if (has) return { type: "label", key, op: "has" };
    return { type: "label", key, op: equality(`labels.${key}`), value };
  }
  const [kindName, side, ...path] = field.split(".");
  const product = kindName ? productByKindName(kindName) : undefined;
  if (product && (side === "reported" || side === "desired") && path.length > 0) {
    const schema = side === "reported" ? product.reportedSchema : product.desiredSchema;
    return stateComparison(product.kindName, side, schema, path, op, value, fail);
  }
  if (product) fail(`${field} is not a state field: name one as ${kindName}.reported.<field> or ${kindName}.desired.<field>`);
  return fail(`unknown field "${field.slice(0, 80)}"; fields are ${fieldList()}`);
}

function timestamp(value: string, field: string, fail: Fail): string {
  const ms = RFC3339.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(ms)) fail(`${field} compares with an RFC 3339 time such as "2024-05-01T12:00:00Z", not "${value.slice(0, 80)}"`);
  return new Date(ms).toISOString();
}

function stateComparison(
  kind: string,
  side: "reported" | "desired",
  schema: DescMessage,
  names: string[],
  op: Op | ":",
  value: string,
  fail: Fail,
): StateComparison {
  let message = schema;
  const path: string[] = [];
  let leaf: DescField | undefined;
  const where = () => `${kind}.${side}.${names.slice(0, path.length + 1).join(".")}`;
  for (const [i, name] of names.entries()) {
    const f = message.fields.find((x) => x.name === name);
    if (!f) fail(`${where()}: ${message.typeName} has no field "${name}"; it has ${message.fields.map((x) => x.name).join(", ")}`);
    path.push(f.jsonName);
    const last = i === names.length - 1;
    if (f.fieldKind === "message" && f.message.typeName !== "google.protobuf.Timestamp") {
      if (last) fail(`${where()} is a message; name one of its fields: ${f.message.fields.map((x) => x.name).join(", ")}`);
      if (path.length >= MAX_STATE_DEPTH) fail(`${where()}: at most ${MAX_STATE_DEPTH} levels of fields`);
      message = f.message;
      continue;
    }
    if (!last) fail(`${where()} has no fields`);
    leaf = f;
  }
  const f = leaf!;
  const name = `${kind}.${side}.${names.join(".")}`;
  const { valueType, zero } = typeOf(f, name, fail);
  const base = { type: "state", kind, side, path, valueType, implicit: f.presence === FeatureSet_FieldPresence.IMPLICIT, zero } as const;
  if (op === ":") return { ...base, op: "has" };
  if (ORDER.includes(op) && valueType !== "number" && valueType !== "timestamp") fail(`${name} is a ${valueType}: it supports only =, != and :*`);
  switch (valueType) {
    case "number": {
      const n = Number(value);
      if (value.trim() === "" || !Number.isFinite(n)) fail(`${name} is a number; "${value.slice(0, 80)}" is not one`);
      return { ...base, op, value: n };
    }
    case "bool":
      if (value !== "true" && value !== "false") fail(`${name} must be true or false`);
      return { ...base, op, value: value === "true" };
    case "string":
      return { ...base, op, value };
    case "timestamp":
      return { ...base, op, value: timestamp(value, name, fail) };
    case "enum": {
      const e = f.fieldKind === "enum" ? f.enum : undefined;
      const prefix = e ? sharedPrefix(e.values.map((x) => x.name)) : "";
      const v = e?.values.find((x) => x.name === value || x.name === prefix + value || String(x.number) === value);
      if (!e || !v) fail(`${name} is one of ${e?.values.map((x) => x.name).join(", ")}, not "${value.slice(0, 80)}"`);
      return { ...base, op, value: [v.name, String(v.number)] };
    }
  }
}

function typeOf(f: DescField, name: string, fail: Fail): { valueType: StateValueType; zero: string | number | boolean } {
  if (f.fieldKind === "message") return { valueType: "timestamp", zero: "" };
  if (f.fieldKind === "enum") return { valueType: "enum", zero: f.enum.values.find((v) => v.number === 0)?.name ?? "0" };
  if (f.fieldKind !== "scalar") return fail(`${name} is a ${f.fieldKind}: lists and maps cannot be filtered on`);
  if (f.scalar === ScalarType.BOOL) return { valueType: "bool", zero: false };
  if (f.scalar === ScalarType.STRING) return { valueType: "string", zero: "" };
  if (f.scalar === ScalarType.BYTES) return fail(`${name} is bytes: it cannot be filtered on`);
  return { valueType: "number", zero: 0 };
}

/** `THERMOSTAT_MODE_` for THERMOSTAT_MODE_OFF, …_HEAT: so a filter may say `mode = HEAT`. */
function sharedPrefix(names: string[]): string {
  let p = names[0] ?? "";
  for (const n of names) while (!n.startsWith(p)) p = p.slice(0, -1);
  return p.slice(0, p.lastIndexOf("_") + 1);
}
