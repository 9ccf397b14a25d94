import { InvalidArgumentError } from "../errors.js";
import { type DeviceFilter, parseDeviceFilter } from "../devices/device-filter.js";

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
 * Parses a share selector: the ListDevices filter syntax, limited to `kind` and `labels.*` terms
 * (owner and online are not properties a share should follow), and not empty (that would be
 * every device: make the user an admin instead).
 */
export function parseSelector(text: string, field = "selector"): DeviceFilter {
  const f = parseDeviceFilter(text, field);
  if (f.id !== undefined || f.owner !== undefined || f.online !== undefined) throw InvalidArgumentError.field(field, "may only use kind and labels.* terms");
  if (f.kind === undefined && f.labels.length === 0) throw InvalidArgumentError.field(field, "must have at least one term");
  return f;
}

/** Whether a device matches a parsed filter (the in-memory twin of the SQL in device-store.ts). */
export function matchesFilter(f: DeviceFilter, d: DeviceMeta): boolean {
  if (f.id !== undefined && f.id !== d.id) return false;
  if (f.kind !== undefined && f.kind !== d.kind) return false;
  if (f.owner !== undefined && f.owner !== d.owner) return false;
  for (const c of f.labels) {
    const has = Object.hasOwn(d.labels, c.key);
    if (c.op === "present" && !has) return false;
    if (c.op === "=" && (!has || d.labels[c.key] !== c.value)) return false;
    if (c.op === "!=" && has && d.labels[c.key] === c.value) return false;
  }
  return true;
}
