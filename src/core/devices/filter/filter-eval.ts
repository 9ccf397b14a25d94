import type { JsonValue } from "@bufbuild/protobuf";
import type { Comparison, FilterExpr, Op, StateComparison } from "./filter-ast.js";
import { compareSemver } from "../../semver.js";

/**
 * What a filter looks at, as the `devices` row holds it. Share selectors and rights checks pass only
 * id, kind, owner and labels (selectors may name nothing else); a field left undefined reads as
 * missing, so comparisons on it are false.
 */
export interface FilterSubject {
  id: string;
  kind: string;
  owner: string;
  labels: Record<string, string>;
  online?: boolean;
  displayName?: string;
  firmwareVersion?: string;
  createTime?: Date;
  lastSeenTime?: Date;
  /** The state as stored: protobuf JSON of the product's reported (desired) message, `{}` if never set. */
  reported?: JsonValue;
  desired?: JsonValue;
}

/**
 * Whether a device matches a filter, in memory: webhooks, WatchDevices and rights checks. The twin of
 * `whereFilter` in src/store/device-filter-sql.ts; tests/unit/device-filter-equivalence.test.ts
 * checks the two agree over a fleet in PGlite.
 */
export function matchesFilter(e: FilterExpr, s: FilterSubject): boolean {
  switch (e.type) {
    case "true":
      return true;
    case "and":
      return e.items.every((x) => matchesFilter(x, s));
    case "or":
      return e.items.some((x) => matchesFilter(x, s));
    case "not":
      return !matchesFilter(e.item, s);
    default:
      // `!=` is NOT `=` everywhere: a device without the value matches it.
      return e.op === "!=" ? !holds({ ...e, op: "=" } as Comparison, s) : holds(e, s);
  }
}

function holds(c: Comparison, s: FilterSubject): boolean {
  switch (c.type) {
    case "id":
      return s.id === c.value;
    case "text":
      return (c.field === "kind" ? s.kind : c.field === "owner" ? s.owner : s.displayName) === c.value;
    case "online":
      return s.online === c.value;
    case "time": {
      const t = c.field === "create_time" ? s.createTime : s.lastSeenTime;
      if (t === undefined) return false;
      return c.op === "has" || order(t.getTime(), Date.parse(c.value!), c.op);
    }
    case "firmware": {
      const v = s.firmwareVersion;
      if (v === undefined) return false;
      if (c.op === "has") return v !== "";
      const cmp = compareSemver(v, c.value!);
      if (c.op === "=") return cmp === undefined ? v === c.value : cmp === 0;
      return cmp !== undefined && order(cmp, 0, c.op);
    }
    case "label":
      if (c.op === "has") return Object.hasOwn(s.labels, c.key);
      return Object.hasOwn(s.labels, c.key) && s.labels[c.key] === c.value;
    case "state":
      return stateHolds(c, s);
  }
}

function stateHolds(c: StateComparison, s: FilterSubject): boolean {
  const { raw, value } = stateValue(c, s);
  if (c.op === "has") return raw !== undefined;
  if (value === undefined) return false;
  switch (c.valueType) {
    case "number": {
      const n = typeof value === "number" ? value : typeof value === "string" && /^-?[0-9]+$/.test(value) ? Number(value) : undefined;
      return n !== undefined && order(n, c.value as number, c.op as Op);
    }
    case "timestamp":
      return typeof value === "string" && order(Date.parse(value), Date.parse(c.value as string), c.op as Op);
    case "enum":
      return (typeof value === "string" || typeof value === "number") && (c.value as string[]).includes(String(value));
    default:
      return value === c.value;
  }
}

/**
 * The field's value: `raw` as stored (undefined if the key is missing), `value` with a missing
 * implicit field read as its zero. A device of another kind, or one whose state (or the enclosing
 * message) was never set, has neither.
 */
export function stateValue(c: StateComparison, s: FilterSubject): { raw?: JsonValue; value?: JsonValue } {
  if (s.kind !== c.kind) return {};
  let node = c.side === "reported" ? s.reported : s.desired;
  if (!isObject(node) || Object.keys(node).length === 0) return {};
  for (const key of c.path.slice(0, -1)) {
    node = (node as Record<string, JsonValue>)[key];
    if (!isObject(node)) return {};
  }
  const raw = (node as Record<string, JsonValue>)[c.path.at(-1)!];
  return { raw, value: raw ?? (c.implicit ? c.zero : undefined) };
}

function isObject(v: JsonValue | undefined): v is { [k: string]: JsonValue } {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function order(a: number, b: number, op: Op | "has"): boolean {
  switch (op) {
    case "=":
      return a === b;
    case "<":
      return a < b;
    case "<=":
      return a <= b;
    case ">":
      return a > b;
    case ">=":
      return a >= b;
    default:
      return false;
  }
}
