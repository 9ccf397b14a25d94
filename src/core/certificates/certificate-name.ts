import { InvalidArgumentError } from "../errors.js";
import { isValidDeviceId, parseDeviceName, truncate } from "../devices/device-name.js";

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

/** `users/{user}/certificates/{serial}`: a user's client certificate (the bootstrap `admin`). */
export function userCertificateName(user: string, serialNumber: string): string {
  return `users/${user}/certificates/${serialNumber}`;
}

/** Whose certificates: a device's (`devices/{device}`) or a user's (`users/{user}`). */
export type CertificateOwner = { kind: "device"; deviceId: string } | { kind: "user"; userName: string };

/** User names as certificate parents: the CN of a user certificate. */
const USER_NAME = /^[a-z][a-z0-9._-]{0,62}$/;

/** Parses a ListCertificates parent: `devices/{device}` or `users/{user}`. */
export function parseCertificateParent(parent: string, field = "parent"): CertificateOwner {
  const user = /^users\/([^/]+)$/.exec(parent);
  if (user) {
    if (!USER_NAME.test(user[1]!)) throw InvalidArgumentError.field(field, `"${truncate(parent)}" is not a user name`);
    return { kind: "user", userName: user[1]! };
  }
  return { kind: "device", deviceId: parseDeviceName(parent, field) };
}

/** Parses `devices/{device}/certificates/{serial}` or `users/{user}/certificates/{serial}`. */
export function parseAnyCertificateName(name: string, field = "name"): { owner: CertificateOwner; serialNumber: string } {
  const user = /^users\/([^/]+)\/certificates\/([0-9A-Fa-f]{2,64})$/.exec(name);
  if (user && USER_NAME.test(user[1]!)) return { owner: { kind: "user", userName: user[1]! }, serialNumber: normalizeSerial(user[2]!) };
  const { deviceId, serialNumber } = parseCertificateName(name, field);
  return { owner: { kind: "device", deviceId }, serialNumber };
}

/** Parses `devices/{device}/certificates/{serial}`. */
export function parseCertificateName(name: string, field = "name"): { deviceId: string; serialNumber: string } {
  const m = /^devices\/([^/]+)\/certificates\/([0-9A-Fa-f]{2,64})$/.exec(name);
  if (!m || !isValidDeviceId(m[1]!)) {
    throw InvalidArgumentError.field(
      field,
      `"${truncate(name)}" is not a certificate name: expected devices/{device}/certificates/{serial} with a hexadecimal serial`,
    );
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
    throw InvalidArgumentError.field(
      field,
      `"${truncate(name)}" is not a template name: expected provisioningTemplates/{template}, {template} 1-63 lowercase letters, digits or hyphens starting with a letter`,
    );
  }
  return m[1]!;
}
