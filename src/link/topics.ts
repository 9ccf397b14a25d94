/**
 * The MQTT topic scheme between Tether and devices — the only place topic strings are built or parsed.
 *
 * Every device owns the subtree `tether/v1/devices/{device}/`:
 *
 * | topic | direction | payload |
 * |---|---|---|
 * | `…/down` | Tether → device | binary protobuf `Downlink` |
 * | `…/up` | device → Tether | binary protobuf `Uplink` |
 * | `…/up/json` | device → Tether | protobuf JSON `Uplink` (for devices without a protobuf runtime) |
 * | `…/presence` | device → Tether | `online` / `offline`, retained; `offline` is the device's last will |
 * | `…/metrics/{metric}` | device → Tether | a decimal number as text (the simplest possible device) |
 *
 * The version sits in the topic so that a future v2 scheme can run beside v1 on the same broker.
 */

/** Root of all device topics. */
export const TOPIC_PREFIX = "tether/v1/devices/";

/** Device ids: lowercase, start with a letter, at most 63 characters (DNS-label-like, safe in topics and CNs). */
export const DEVICE_ID_PATTERN = /^[a-z][a-z0-9-]{0,62}$/;
/** Metric names in `…/metrics/{metric}`. */
export const METRIC_NAME_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;

/** Presence payloads. */
export const PRESENCE_ONLINE = "online";
export const PRESENCE_OFFLINE = "offline";

/** The channel part of a device topic. */
export type DeviceChannel = "down" | "up" | "up/json" | "presence" | "metrics";

/** A parsed device topic. `metric` is set only for the `metrics` channel. */
export interface DeviceTopic {
  deviceId: string;
  channel: DeviceChannel;
  metric?: string;
}

export function isValidDeviceId(id: string): boolean {
  return DEVICE_ID_PATTERN.test(id);
}

export function isValidMetricName(name: string): boolean {
  return METRIC_NAME_PATTERN.test(name);
}

function deviceTopic(deviceId: string, suffix: string): string {
  if (!isValidDeviceId(deviceId)) throw new Error(`invalid device id: ${JSON.stringify(deviceId)}`);
  return `${TOPIC_PREFIX}${deviceId}/${suffix}`;
}

/** Where Tether publishes binary `Downlink` messages for a device. */
export const downlinkTopic = (deviceId: string): string => deviceTopic(deviceId, "down");
/** Where a device publishes binary `Uplink` messages. */
export const uplinkTopic = (deviceId: string): string => deviceTopic(deviceId, "up");
/** Where a device publishes protobuf-JSON `Uplink` messages. */
export const uplinkJsonTopic = (deviceId: string): string => deviceTopic(deviceId, "up/json");
/** A device's retained presence topic, also its last-will topic. */
export const presenceTopic = (deviceId: string): string => deviceTopic(deviceId, "presence");
/** Where a device publishes one plain numeric metric. */
export function metricTopic(deviceId: string, metric: string): string {
  if (!isValidMetricName(metric)) throw new Error(`invalid metric name: ${JSON.stringify(metric)}`);
  return deviceTopic(deviceId, `metrics/${metric}`);
}

/** Subscription filters Tether's bridge uses to receive from every device. */
export const ALL_UPLINKS = `${TOPIC_PREFIX}+/up`;
export const ALL_JSON_UPLINKS = `${TOPIC_PREFIX}+/up/json`;
export const ALL_PRESENCE = `${TOPIC_PREFIX}+/presence`;
export const ALL_METRICS = `${TOPIC_PREFIX}+/metrics/+`;

/**
 * Parses a concrete device topic. Returns undefined for anything outside the scheme, for wildcard
 * filters and for invalid device ids or metric names — so the result can be trusted as-is.
 */
export function parseDeviceTopic(topic: string): DeviceTopic | undefined {
  if (!topic.startsWith(TOPIC_PREFIX) || topic.includes("+") || topic.includes("#")) return undefined;
  const [deviceId, ...rest] = topic.slice(TOPIC_PREFIX.length).split("/");
  if (deviceId === undefined || !isValidDeviceId(deviceId)) return undefined;
  const tail = rest.join("/");
  switch (tail) {
    case "down":
    case "up":
    case "up/json":
    case "presence":
      return { deviceId, channel: tail };
  }
  if (rest.length === 2 && rest[0] === "metrics" && isValidMetricName(rest[1]!)) {
    return { deviceId, channel: "metrics", metric: rest[1]! };
  }
  return undefined;
}

/**
 * The broker's authorization rule for device clients: a device may publish only to its own `up`,
 * `up/json`, `presence` and `metrics/{metric}` topics, and subscribe only to its own `down` topic.
 * Wildcards are never allowed, so a device can neither read nor spoof another device's traffic.
 */
export function isTopicAllowedForDevice(deviceId: string, topic: string, action: "publish" | "subscribe"): boolean {
  const parsed = parseDeviceTopic(topic);
  if (!parsed || parsed.deviceId !== deviceId) return false;
  return action === "subscribe" ? parsed.channel === "down" : parsed.channel !== "down";
}
