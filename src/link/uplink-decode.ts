import { fromBinary, fromJsonString } from "@bufbuild/protobuf";
import { type Uplink, UplinkSchema } from "../../gen/tether/device/v1/uplink_pb.js";
import type { Counters } from "../core/ports/index.js";
import { createLogThrottle, createRateLimiter } from "../core/rate-limit.js";
import type { UplinkItem } from "../core/ports/uplink-intake.js";
import type { Logger } from "../log.js";
import { isPresencePayload, parseDeviceTopic, PRESENCE_OFFLINE_CLEAN, PRESENCE_ONLINE } from "../protocol/topics.js";

const LOG_EVERY_MS = 10_000;

/** Why a device message was not taken. */
export type DropReason = "bad_topic" | "oversized" | "malformed" | "rate_limited";

/**
 * Turns what a device published (an MQTT topic of the one scheme in topics.ts, and the payload)
 * into an UplinkItem, or says why it is dropped. Every transport uses it — the MQTT bridge and the
 * RabbitMQ (MQTT plugin) link — so one topic scheme and one codec hold for all of them.
 */
export function decodeDeviceMessage(topic: string, payload: Buffer, maxPayloadBytes: number): { item: UplinkItem } | { drop: DropReason } {
  const t = parseDeviceTopic(topic);
  if (!t || t.channel === "down") return { drop: "bad_topic" };
  if (payload.length > maxPayloadBytes) return { drop: "oversized" };
  if (t.channel === "presence") {
    const text = payload.toString("utf8");
    if (!isPresencePayload(text)) return { drop: "malformed" };
    if (text === PRESENCE_OFFLINE_CLEAN) return { item: { kind: "presence", deviceId: t.deviceId, online: false, reason: "clean" } };
    return { item: { kind: "presence", deviceId: t.deviceId, online: text === PRESENCE_ONLINE } };
  }
  if (t.channel === "metrics") return { item: { kind: "metric", deviceId: t.deviceId, metric: t.metric!, text: payload.toString("utf8") } };
  let up: Uplink;
  try {
    up = t.channel === "up" ? fromBinary(UplinkSchema, payload) : fromJsonString(UplinkSchema, payload.toString("utf8"));
  } catch {
    return { drop: "malformed" };
  }
  return { item: { kind: "uplink", deviceId: t.deviceId, uplink: up } };
}

/**
 * `decodeDeviceMessage` with the bookkeeping every transport does: drops are counted
 * (`tether_uplink_dropped_total{reason}`) and logged, envelopes counted by kind. Returns the item
 * to submit, or undefined.
 */
export function createUplinkDecoder(o: { maxPayloadBytes: number; counters: Counters; log: Logger; limit?: { ratePerS: number; burst: number } }) {
  const now = () => performance.now();
  // Per device: a token bucket, and a drop log line at most every LOG_EVERY_MS (a flood or a fuzzer
  // must not turn into a log flood). Presence is never limited: it is what the broker says, once.
  const limiter = createRateLimiter({ ratePerS: o.limit?.ratePerS ?? 0, burst: o.limit?.burst ?? 1, now });
  const shouldLog = createLogThrottle(LOG_EVERY_MS, now);
  return (topic: string, payload: Buffer): UplinkItem | undefined => {
    const r = decodeDeviceMessage(topic, payload, o.maxPayloadBytes);
    if (!("drop" in r) && r.item.kind !== "presence" && !limiter.take(r.item.deviceId)) return drop("rate_limited", topic, r.item.deviceId);
    if ("drop" in r) return drop(r.drop, topic, parseDeviceTopic(topic)?.deviceId);
    if (r.item.kind === "uplink") o.counters.inc("tether_uplink_received_total", { kind: r.item.uplink.body.case ?? "empty" });
    return r.item;
  };
  function drop(reason: DropReason, topic: string, deviceId: string | undefined): undefined {
    o.counters.inc("tether_uplink_dropped_total", { reason });
    if (shouldLog(`${deviceId ?? ""}/${reason}`))
      o.log.warn({ topic: topic.slice(0, 200), deviceId, reason }, "uplink dropped (logged once per device and reason every 10 s)");
    return undefined;
  }
}
