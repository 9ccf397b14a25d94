/**
 * A device id is the `{device}` of `devices/{device}`. It is also the MQTT client id, the topic
 * segment and the certificate CN, so one pattern serves the API, the broker, the PKI and the device
 * SDK: lowercase, starting with a letter, at most 63 characters, not ending with a hyphen
 * (DNS-label-like, safe in topics and distinguished names).
 */
export const DEVICE_ID_PATTERN = /^[a-z][a-z0-9-]{0,62}$/;

export function isValidDeviceId(id: string): boolean {
  return DEVICE_ID_PATTERN.test(id) && !id.endsWith("-");
}
