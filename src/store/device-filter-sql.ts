import type { Comparison, FilterExpr, Op, StateComparison } from "../core/devices/filter/filter-ast.js";
import type postgres from "postgres";
import type { Sql } from "./database.js";

type Fragment = postgres.Fragment;

/**
 * A device filter as a condition on `devices` (unqualified columns). ListDevices, CountDevices,
 * share selectors and job targets all select devices with it, so they agree on what matches; the
 * in-memory twin is `matchesFilter` (core/devices/filter/filter-eval.ts). Every value is a bound
 * parameter. Each comparison is wrapped so it is never NULL: logic stays two-valued, as in memory
 * (`NOT (last_seen_time < …)` is true for a device never seen).
 */
export function whereFilter(sql: Sql, e: FilterExpr): Fragment {
  switch (e.type) {
    case "true":
      return sql`true`;
    case "and":
      return join(
        sql,
        e.items.map((x) => whereFilter(sql, x)),
        "AND",
      );
    case "or":
      return join(
        sql,
        e.items.map((x) => whereFilter(sql, x)),
        "OR",
      );
    case "not":
      return sql`NOT (${whereFilter(sql, e.item)})`;
    default:
      if (e.op === "!=") return sql`NOT ${holds(sql, { ...e, op: "=" } as Comparison)}`;
      return holds(sql, e);
  }
}

/** Parenthesised as a whole: callers AND it with their own conditions (the caller's scope). */
function join(sql: Sql, parts: Fragment[], op: "AND" | "OR"): Fragment {
  const inner = parts.map((p) => sql`(${p})`).reduce((acc, p) => (op === "AND" ? sql`${acc} AND ${p}` : sql`${acc} OR ${p}`));
  return sql`(${inner})`;
}

/** A comparison other than `!=`, never NULL. */
function holds(sql: Sql, c: Comparison): Fragment {
  switch (c.type) {
    case "id":
      return sql`(id = ${c.value})`;
    case "text":
      return c.field === "kind" ? sql`(kind = ${c.value})` : c.field === "owner" ? sql`(owner = ${c.value})` : sql`(display_name = ${c.value})`;
    case "online":
      return sql`(online = ${c.value})`;
    case "time": {
      const col = c.field === "create_time" ? sql`create_time` : sql`last_seen_time`;
      if (c.op === "has") return sql`(${col} IS NOT NULL)`;
      return sql`COALESCE(${col} ${cmp(sql, c.op)} ${c.value!}::timestamptz, false)`;
    }
    case "firmware": {
      if (c.op === "has") return sql`(firmware_version <> '')`;
      const semver = sql`tether_semver_cmp(firmware_version, ${c.value!})`;
      // Non-semver on either side: `=` is string equality and an ordering is false.
      if (c.op === "=") return sql`COALESCE(CASE WHEN ${semver} IS NULL THEN firmware_version = ${c.value!} ELSE ${semver} = 0 END, false)`;
      return sql`COALESCE(${semver} ${cmp(sql, c.op)} 0, false)`;
    }
    case "label":
      if (c.op === "has") return sql`(labels ? ${c.key})`;
      // @> uses the GIN index.
      return sql`(labels @> ${sql.json({ [c.key]: c.value! })})`;
    case "state":
      return stateHolds(sql, c);
  }
}

function stateHolds(sql: Sql, c: StateComparison): Fragment {
  const col = c.side === "reported" ? sql`reported` : sql`desired`;
  const parent = c.path.slice(0, -1);
  // The enclosing message is there: the device is of the kind, its state was set, and each message
  // on the path is present (protobuf JSON omits an unset one).
  const there = sql`kind = ${c.kind} AND ${col} <> '{}'::jsonb AND jsonb_typeof(${col} #> ${parent}::text[]) = 'object'`;
  const raw = sql`(${col} #> ${c.path}::text[])`;
  if (c.op === "has") return sql`COALESCE(${there} AND ${raw} IS NOT NULL, false)`;
  const v = c.implicit ? sql`CASE WHEN ${there} THEN COALESCE(${raw}, ${jsonb(sql, c.zero)}) END` : sql`CASE WHEN ${there} THEN ${raw} END`;
  const op = c.op as Op;
  switch (c.valueType) {
    case "number": {
      // protobuf JSON writes 64-bit integers as strings, and NaN and Infinity as strings too (those never match).
      const n = sql`CASE jsonb_typeof(${v}) WHEN 'number' THEN (${v})::numeric WHEN 'string' THEN
        CASE WHEN (${v} #>> '{}') ~ '^-?[0-9]+$' THEN (${v} #>> '{}')::numeric END END`;
      return sql`COALESCE(${n} ${cmp(sql, op)} ${c.value as number}::numeric, false)`;
    }
    case "timestamp":
      return sql`COALESCE(CASE WHEN jsonb_typeof(${v}) = 'string' THEN (${v} #>> '{}')::timestamptz END ${cmp(sql, op)} ${c.value as string}::timestamptz, false)`;
    case "enum":
      return sql`COALESCE(jsonb_typeof(${v}) IN ('string', 'number') AND (${v} #>> '{}') = ANY(${c.value as string[]}::text[]), false)`;
    default:
      return sql`COALESCE(${v} = ${jsonb(sql, c.value as string | boolean)}, false)`;
  }
}

/**
 * A JSON literal bound as text and cast: bound with a jsonb type, postgres.js would encode the
 * already-encoded string a second time.
 */
function jsonb(sql: Sql, v: string | number | boolean): Fragment {
  return sql`(${JSON.stringify(v)}::text)::jsonb`;
}

/** A comparator as SQL; only these fixed strings are ever inlined. */
function cmp(sql: Sql, op: Op): Fragment {
  switch (op) {
    case "=":
      return sql`=`;
    case "<":
      return sql`<`;
    case "<=":
      return sql`<=`;
    case ">":
      return sql`>`;
    case ">=":
      return sql`>=`;
    default:
      throw new Error(`no SQL comparator for ${op}`);
  }
}
