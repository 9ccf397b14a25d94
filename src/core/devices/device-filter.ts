import type { Device } from "../../../gen/tether/v1/device_pb.js";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { type JsonValue, toJson } from "@bufbuild/protobuf";
import { productByCase } from "../products/index.js";
import type { FilterExpr } from "./filter/filter-ast.js";
import type { FilterSubject } from "./filter/filter-eval.js";
import { parseFilterExpr } from "./filter/filter-parser.js";
import { parseDeviceName } from "./device-name.js";

export type { Comparison, FilterExpr, Op, StateComparison } from "./filter/filter-ast.js";
export { type FilterSubject, matchesFilter } from "./filter/filter-eval.js";
export { FILTER_MAX_DEPTH, FILTER_MAX_LENGTH, FILTER_MAX_TERMS } from "./filter/filter-parser.js";

/** A parsed device filter (the AST of filter/filter-ast.ts). */
export type DeviceFilter = FilterExpr;

/**
 * Parses a device filter: the AIP-160 subset of ListDevices, CountDevices, WatchDevices, job
 * selectors, share selectors and webhook device filters, e.g.
 * `kind = "<kind>" AND (labels.site = "north" OR labels.site = "south") AND <kind>.reported.<field> < 18`.
 * Anything it cannot read is InvalidArgument on `field`, naming the term and its position.
 */
export function parseDeviceFilter(filter: string, field = "filter"): DeviceFilter {
  return parseFilterExpr(filter, field);
}

/** The conjunction of filters (`true` ones dropped). */
export function allOf(...items: FilterExpr[]): FilterExpr {
  const parts = items.filter((x) => x.type !== "true");
  return parts.length === 0 ? { type: "true" } : parts.length === 1 ? parts[0]! : { type: "and", items: parts };
}

/**
 * The kind a filter requires by a top-level `kind = "…"` term (or a state field of that kind),
 * ANDed with the rest: what a job's command must be for. Undefined if it does not pin one.
 */
export function pinnedKind(e: FilterExpr): string | undefined {
  if (e.type === "and") return e.items.map(pinnedKind).find((k) => k !== undefined);
  if (e.type === "text" && e.field === "kind" && e.op === "=") return e.value;
  if (e.type === "state" && e.op !== "has") return e.kind;
  return undefined;
}

/** Every comparison in a filter, for checks such as "a share selector names only kind and labels". */
export function comparisons(e: FilterExpr): Exclude<FilterExpr, { type: "true" | "and" | "or" | "not" }>[] {
  switch (e.type) {
    case "true":
      return [];
    case "and":
    case "or":
      return e.items.flatMap(comparisons);
    case "not":
      return comparisons(e.item);
    default:
      return [e];
  }
}

/** What a filter sees of a Device message: the same fields the `devices` row gives SQL. */
export function subjectOf(d: Device): FilterSubject {
  const state = (side: "reported" | "desired"): JsonValue => {
    if (!d.kind.case) return {};
    const p = productByCase(d.kind.case);
    const m = (d.kind.value as { reported?: unknown; desired?: unknown })[side];
    return m ? toJson(side === "reported" ? p.reportedSchema : p.desiredSchema, m as never) : {};
  };
  let reported: JsonValue | undefined;
  let desired: JsonValue | undefined;
  return {
    id: parseDeviceName(d.name),
    kind: d.kind.case ? productByCase(d.kind.case).kindName : "",
    owner: d.owner,
    labels: d.labels,
    online: d.connectivity?.online ?? false,
    displayName: d.displayName,
    firmwareVersion: d.firmwareVersion,
    createTime: d.createTime ? timestampDate(d.createTime) : undefined,
    lastSeenTime: d.connectivity?.lastSeenTime ? timestampDate(d.connectivity.lastSeenTime) : undefined,
    // Converted only when a filter reads them.
    get reported() {
      reported ??= state("reported");
      return reported;
    },
    get desired() {
      desired ??= state("desired");
      return desired;
    },
  };
}
