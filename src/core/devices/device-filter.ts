import { InvalidArgumentError } from "../errors.js";
import { productByKindName, PRODUCTS } from "../products/index.js";

/** A parsed ListDevices filter: a conjunction, all of which must hold. */
export interface DeviceFilter {
  /** A device id, from `name = "devices/{device}"`. */
  id?: string;
  kind?: string;
  owner?: string;
  online?: boolean;
  labels: LabelCondition[];
}

export type LabelCondition = { key: string; op: "="; value: string } | { key: string; op: "!="; value: string } | { key: string; op: "present" };

const TERM = /^\s*(name|kind|owner|online|labels\.([A-Za-z][A-Za-z0-9_.-]{0,62}))\s*(=|!=|:)\s*(?:"((?:[^"\\]|\\.)*)"|([^\s"]+))\s*$/;

/**
 * Parses the small AIP-160 subset ListDevices accepts, e.g.
 * `kind = "<kind name>" AND labels.room = "kitchen" AND online = true`. Anything else is InvalidArgument
 * with the offending term, so a typo never silently matches everything.
 */
export function parseDeviceFilter(filter: string, field = "filter"): DeviceFilter {
  const result: DeviceFilter = { labels: [] };
  if (filter.trim() === "") return result;
  if (filter.length > 2000) throw InvalidArgumentError.field(field, "is longer than 2000 characters");
  for (const term of filter.split(/\s+AND\s+/)) {
    const m = TERM.exec(term);
    if (!m) {
      throw InvalidArgumentError.field(
        field,
        `cannot parse "${term.trim()}": expected terms like name = "devices/kitchen-1", kind = "${PRODUCTS[0]!.kindName}", labels.room = "kitchen", labels.room:*, owner = "alice", online = true, joined by AND`,
      );
    }
    const [, lhs, labelKey, op, quoted, bare] = m;
    const value = quoted !== undefined ? quoted.replace(/\\(.)/g, "$1") : bare!;
    if (labelKey !== undefined) {
      if (op === ":") {
        if (value !== "*") throw InvalidArgumentError.field(field, `labels.${labelKey}: only ":*" (has label) is supported`);
        result.labels.push({ key: labelKey, op: "present" });
      } else {
        result.labels.push({ key: labelKey, op: op as "=" | "!=", value });
      }
      continue;
    }
    if (op !== "=") throw InvalidArgumentError.field(field, `${lhs} supports only "="`);
    if (lhs === "name") {
      const m = /^devices\/([a-z][a-z0-9-]{0,62})$/.exec(value);
      if (!m) throw InvalidArgumentError.field(field, `name must be "devices/{device}", not "${value.slice(0, 80)}"`);
      result.id = m[1];
    } else if (lhs === "kind") {
      if (!productByKindName(value)) {
        const known = PRODUCTS.map((p) => p.kindName).join(", ");
        throw InvalidArgumentError.field(field, `unknown kind "${value}"; known kinds: ${known}`);
      }
      result.kind = value;
    } else if (lhs === "owner") {
      result.owner = value;
    } else {
      if (value !== "true" && value !== "false") throw InvalidArgumentError.field(field, "online must be true or false");
      result.online = value === "true";
    }
  }
  return result;
}
