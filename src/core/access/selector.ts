import { InvalidArgumentError } from "../errors.js";
import { comparisons, type DeviceFilter, matchesFilter as evaluate, parseDeviceFilter } from "../devices/device-filter.js";

/** What rights decisions need to know about a device. */
export interface DeviceMeta {
  id: string;
  /** The product's kind name (its `kindName` in the product registry). */
  kind: string;
  labels: Record<string, string>;
  /** The owning user's name, or empty. */
  owner: string;
}

/**
 * Parses a share selector: the ListDevices filter syntax (AND, OR, NOT and parentheses included),
 * limited to `kind` and `labels.*` terms (owner, online, versions and state are not properties a
 * share should follow: a share must not come and go with a reading), and not empty (that would be
 * every device: make the user an admin instead).
 */
export function parseSelector(text: string, field = "selector"): DeviceFilter {
  const f = parseDeviceFilter(text, field);
  const terms = comparisons(f);
  if (terms.some((c) => c.type !== "label" && !(c.type === "text" && c.field === "kind"))) {
    throw InvalidArgumentError.field(field, "may only use kind and labels.* terms");
  }
  if (terms.length === 0) throw InvalidArgumentError.field(field, "must have at least one term");
  return f;
}

/** Whether a device matches a parsed filter (the in-memory twin of the SQL in device-filter-sql.ts). */
export function matchesFilter(f: DeviceFilter, d: DeviceMeta): boolean {
  return evaluate(f, d);
}
