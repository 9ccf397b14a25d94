/**
 * A parsed device filter: what ListDevices, CountDevices, job selectors, share selectors, webhook
 * device filters and WatchDevices select devices with. Plain JSON (no Dates, no classes) so a job
 * can keep it in a jsonb column; compiled to SQL by src/store/device-filter-sql.ts and evaluated
 * in memory by filter-eval.ts, with the same meaning.
 *
 * Logic is two-valued: a comparison with a missing value (a device never seen, a label it lacks,
 * a reported field it never sent) is false, and `!=` is exactly NOT `=`.
 */
export type FilterExpr =
  | { type: "true" }
  | { type: "and"; items: FilterExpr[] }
  | { type: "or"; items: FilterExpr[] }
  | { type: "not"; item: FilterExpr }
  | Comparison;

/** The comparators of AIP-160; `:` is only used as `:*`, "has a value". */
export type Op = "=" | "!=" | "<" | "<=" | ">" | ">=";

/** One restriction, its field resolved and its value checked against the field's type. */
export type Comparison =
  | { type: "id"; op: "=" | "!="; value: string }
  | { type: "text"; field: "kind" | "owner" | "display_name"; op: "=" | "!="; value: string }
  | { type: "online"; op: "=" | "!="; value: boolean }
  /** `value` is RFC 3339 as given (normalised to ISO by the parser); undefined means `:*`. */
  | { type: "time"; field: "create_time" | "last_seen_time"; op: Op | "has"; value?: string }
  | { type: "firmware"; op: Op | "has"; value?: string }
  | { type: "label"; key: string; op: "=" | "!=" | "has"; value?: string }
  | StateComparison;

/** The JSON type a state field's value has, with the protobuf JSON mapping's spellings. */
export type StateValueType = "number" | "bool" | "string" | "enum" | "timestamp";

/**
 * A typed field of a product's reported or desired state, e.g. `<kind>.reported.<field>`.
 * Only devices of `kind` can match. `path` is the JSON path (lowerCamelCase JSON names) into the
 * stored protobuf JSON; `implicit` says the field has no presence (proto3 without `optional`), so
 * protobuf JSON omits its zero value and a missing key reads as `zero` once the message is there.
 */
export interface StateComparison {
  type: "state";
  kind: string;
  side: "reported" | "desired";
  path: string[];
  valueType: StateValueType;
  implicit: boolean;
  /** The value a missing implicit field reads as (protobuf JSON's spelling). */
  zero: string | number | boolean;
  op: Op | "has";
  /**
   * The literal: a number, a boolean, a string, an enum value as its names and number
   * (`["THERMOSTAT_MODE_HEAT", "2"]`), or an ISO timestamp. Undefined for `:*`.
   */
  value?: number | boolean | string | string[];
}
