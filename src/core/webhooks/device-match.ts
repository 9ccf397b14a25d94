import type { DeviceFilter } from "../devices/device-filter.js";

/** What a subscription's device filter looks at. */
export interface DeviceFacts {
  id: string;
  kind: string;
  owner: string;
  online: boolean;
  labels: Record<string, string>;
}

/**
 * A parsed ListDevices filter evaluated in memory, with the same meaning as `whereDeviceFilter`
 * in SQL (`!=` also matches a device without the label, as AIP-160 says).
 */
export function matchesDeviceFilter(f: DeviceFilter, d: DeviceFacts): boolean {
  if (f.id !== undefined && f.id !== d.id) return false;
  if (f.kind !== undefined && f.kind !== d.kind) return false;
  if (f.owner !== undefined && f.owner !== d.owner) return false;
  if (f.online !== undefined && f.online !== d.online) return false;
  for (const c of f.labels) {
    const has = Object.hasOwn(d.labels, c.key);
    if (c.op === "present" && !has) return false;
    if (c.op === "=" && d.labels[c.key] !== c.value) return false;
    if (c.op === "!=" && d.labels[c.key] === c.value) return false;
  }
  return true;
}
