import { InvalidArgumentError } from "../errors.js";
import { isValidDeviceId, truncate } from "../devices/device-name.js";

/** `devices/{device}/certificates/{serial}`; the serial is lowercase hexadecimal. */
export function certificateName(deviceId: string, serialNumber: string): string {
  return `devices/${deviceId}/certificates/${serialNumber}`;
}

/**
 * The canonical form of a serial number: lowercase hex without leading zero bytes. OpenSSL (and so
 * Node's `getPeerCertificate().serialNumber`) prints uppercase; this makes both forms compare equal.
 */
export function normalizeSerial(serial: string): string {
  return serial.toLowerCase().replace(/^(00)+(?=..)/, "");
}

/** Parses `devices/{device}/certificates/{serial}`. */
export function parseCertificateName(name: string, field = "name"): { deviceId: string; serialNumber: string } {
  const m = /^devices\/([^/]+)\/certificates\/([0-9A-Fa-f]{2,64})$/.exec(name);
  if (!m || !isValidDeviceId(m[1]!)) {
    throw InvalidArgumentError.field(field, `"${truncate(name)}" is not a certificate name: expected devices/{device}/certificates/{serial} with a hexadecimal serial`);
  }
  return { deviceId: m[1]!, serialNumber: normalizeSerial(m[2]!) };
}

/** `provisioningTemplates/{template}`. */
export function templateName(id: string): string {
  return `provisioningTemplates/${id}`;
}

export function parseTemplateName(name: string, field = "name"): string {
  const m = /^provisioningTemplates\/([^/]+)$/.exec(name);
  if (!m || !isValidDeviceId(m[1]!)) {
    throw InvalidArgumentError.field(field, `"${truncate(name)}" is not a template name: expected provisioningTemplates/{template}, {template} 1-63 lowercase letters, digits or hyphens starting with a letter`);
  }
  return m[1]!;
}
