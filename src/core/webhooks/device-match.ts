import { type DeviceFilter, type FilterSubject, matchesFilter } from "../devices/device-filter.js";

/**
 * What a subscription's device filter looks at: the device's row as the outbox read it (registry
 * fields, presence, firmware version and state), so every filter field works on webhooks too.
 */
export type DeviceFacts = FilterSubject;

/**
 * A parsed ListDevices filter evaluated in memory, with the same meaning as `whereFilter`
 * in SQL (`!=` also matches a device without the label, as AIP-160 says).
 */
export function matchesDeviceFilter(f: DeviceFilter, d: DeviceFacts): boolean {
  return matchesFilter(f, d);
}
