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
 * | `…/presence` | device → Tether | `online` / `offline` / `offline:clean`, retained; `offline` is the device's last will |
 * | `…/metrics/{metric}` | device → Tether | a decimal number as text (the simplest possible device) |
 *
 * The version sits in the topic so that a future v2 scheme can run beside v1 on the same broker.
 */

/** Root of all device topics. */
export const TOPIC_PREFIX = "tether/v1/devices/";

import { isValidDeviceId } from "./device-id.js";

export { DEVICE_ID_PATTERN, isValidDeviceId } from "./device-id.js";
/** Metric names in `…/metrics/{metric}`. */
export const METRIC_NAME_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;

/** Presence payloads. */
export const PRESENCE_ONLINE = "online";
export const PRESENCE_OFFLINE = "offline";
/**
 * The offline a device publishes itself before a clean DISCONNECT (the SDK does): a last will is
 * always plain `offline`, so an external broker's presence tells a goodbye from a lost connection.
 */
export const PRESENCE_OFFLINE_CLEAN = "offline:clean";

/** Whether a presence payload is one of the three. */
export function isPresencePayload(text: string): boolean {
  return text === PRESENCE_ONLINE || text === PRESENCE_OFFLINE || text === PRESENCE_OFFLINE_CLEAN;
}

/** The channel part of a device topic. */
export type DeviceChannel = "down" | "up" | "up/json" | "presence" | "metrics";

/** A parsed device topic. `metric` is set only for the `metrics` channel. */
export interface DeviceTopic {
  deviceId: string;
  channel: DeviceChannel;
  metric?: string;
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

/**
 * Zero-touch provisioning over MQTT, for claim certificates only (see
 * `proto/tether/device/v1/provisioning.proto`): `tether/v1/provisioning/{template}/{client}/request`
 * (device → Tether) and `…/response` (Tether → device). The template comes from the topic, which
 * the broker lets only a claim certificate whose CN is that template use, with its own client id.
 */
export const PROVISIONING_PREFIX = "tether/v1/provisioning/";
/** The `{client}` of a provisioning topic (e.g. a serial number): no `/`, `+` or `#`. */
export const PROVISIONING_CLIENT_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * A claim certificate connects with client id `claim:{client}`. The `claim:` prefix keeps claim
 * sessions apart from device sessions (a device id never contains `:`): the broker drops an older
 * session with the same client id, so a claim must never be able to take a device's.
 */
export function claimClientOf(clientId: string): string | undefined {
  if (!clientId.startsWith("claim:")) return undefined;
  const client = clientId.slice("claim:".length);
  return PROVISIONING_CLIENT_PATTERN.test(client) ? client : undefined;
}
/** Every provisioning request, for Tether's consumer. */
export const ALL_PROVISIONING_REQUESTS = `${PROVISIONING_PREFIX}+/+/request`;

export const provisioningRequestTopic = (templateId: string, clientId: string): string => `${PROVISIONING_PREFIX}${templateId}/${clientId}/request`;
export const provisioningResponseTopic = (templateId: string, clientId: string): string => `${PROVISIONING_PREFIX}${templateId}/${clientId}/response`;

/** Parses a concrete provisioning topic; undefined for anything else (wildcards included). */
export function parseProvisioningTopic(topic: string): { templateId: string; clientId: string; channel: "request" | "response" } | undefined {
  if (!topic.startsWith(PROVISIONING_PREFIX)) return undefined;
  const parts = topic.slice(PROVISIONING_PREFIX.length).split("/");
  if (parts.length !== 3) return undefined;
  const [templateId, clientId, channel] = parts as [string, string, string];
  if (!isValidDeviceId(templateId) || !PROVISIONING_CLIENT_PATTERN.test(clientId)) return undefined;
  if (channel !== "request" && channel !== "response") return undefined;
  return { templateId, clientId, channel };
}

/** The broker's rule for a claim certificate: publish its own request, subscribe to its own response. */
export function isTopicAllowedForClaim(templateId: string, clientId: string, topic: string, action: "publish" | "subscribe"): boolean {
  const t = parseProvisioningTopic(topic);
  if (!t || t.templateId !== templateId || t.clientId !== clientId) return false;
  return action === "publish" ? t.channel === "request" : t.channel === "response";
}

/**
 * RabbitMQ's MQTT plugin carries MQTT topics on the `amq.topic` exchange with `/` turned into `.`
 * (3.10 leaves a `.` inside a level as it is). These map between the two spellings of the one
 * scheme above; nothing else builds routing keys.
 */
export const ROUTING_KEY_PREFIX = TOPIC_PREFIX.replaceAll("/", ".");

/** The routing key of a concrete MQTT topic (e.g. the downlink topic) on `amq.topic`. */
export const topicToRoutingKey = (topic: string): string => topic.replaceAll("/", ".");

/**
 * The MQTT topic an `amq.topic` routing key came from. Device ids hold no dots, so the device
 * level is unambiguous; after `metrics` the rest is the metric name, which may contain dots.
 * Returns undefined for anything outside the scheme.
 */
export function routingKeyToTopic(routingKey: string): string | undefined {
  if (!routingKey.startsWith(ROUTING_KEY_PREFIX)) return undefined;
  const [deviceId, ...rest] = routingKey.slice(ROUTING_KEY_PREFIX.length).split(".");
  if (deviceId === undefined || rest.length === 0) return undefined;
  const tail = rest[0] === "metrics" ? `metrics/${rest.slice(1).join(".")}` : rest.join("/");
  return `${TOPIC_PREFIX}${deviceId}/${tail}`;
}

/** `amq.topic` binding patterns for everything devices publish (the AMQP twin of ALL_UPLINKS & co.). */
export const UPLINK_ROUTING_PATTERNS = [ALL_UPLINKS, ALL_JSON_UPLINKS, ALL_PRESENCE]
  .map((f) => topicToRoutingKey(f).replaceAll("+", "*"))
  .concat(`${ROUTING_KEY_PREFIX}*.metrics.#`);
