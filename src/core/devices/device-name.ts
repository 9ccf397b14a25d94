import { randomBytes } from "node:crypto";
import { isValidDeviceId } from "../../protocol/device-id.js";
import { InvalidArgumentError } from "../errors.js";

/** One pattern for the API, the broker, the PKI and devices: `src/protocol/device-id.ts`. */
export { DEVICE_ID_PATTERN, isValidDeviceId } from "../../protocol/device-id.js";

export function deviceName(id: string): string {
  return `devices/${id}`;
}

/** Parses `devices/{device}`; throws InvalidArgument naming `field` otherwise. */
export function parseDeviceName(name: string, field = "name"): string {
  if (name === "") throw InvalidArgumentError.field(field, "is required, e.g. devices/kitchen-1");
  const m = /^devices\/([^/]+)$/.exec(name);
  if (!m || !isValidDeviceId(m[1]!)) {
    throw InvalidArgumentError.field(
      field,
      `"${truncate(name)}" is not a device name: expected devices/{device} where {device} is 1-63 lowercase letters, digits or hyphens starting with a letter`,
    );
  }
  return m[1]!;
}

/** A server-chosen id for CreateDevice without `device_id`: short, readable, collision-resistant. */
export function generateDeviceId(prefix: string): string {
  return `${prefix.replace(/_/g, "-")}-${randomBytes(5).toString("hex")}`;
}

/** Keeps echoed user input short in error messages. */
export function truncate(s: string, max = 80): string {
  return s.length > max ? `${s.slice(0, max)}…` : s;
}
