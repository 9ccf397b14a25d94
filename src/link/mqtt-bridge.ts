import { fromBinary, fromJsonString, toBinary } from "@bufbuild/protobuf";
import mqtt, { type MqttClient } from "mqtt";
import type { Logger } from "pino";
import { DownlinkSchema } from "../../gen/tether/device/v1/downlink_pb.js";
import { type Uplink, UplinkSchema } from "../../gen/tether/device/v1/uplink_pb.js";
import type { Counters, DeviceLink } from "../core/ports.js";
import type { UplinkProcessor } from "../core/tasks/uplink-processor.js";
import { createKeyedQueue } from "./keyed-queue.js";
import { enableNoDelay } from "./no-delay.js";
import { ALL_JSON_UPLINKS, ALL_METRICS, ALL_PRESENCE, ALL_UPLINKS, downlinkTopic, parseDeviceTopic, PRESENCE_OFFLINE, PRESENCE_ONLINE } from "./topics.js";

export interface MqttBridgeOptions {
  /** e.g. `mqtts://127.0.0.1:8883`. */
  url: string;
  tls: { ca: string; cert: string; key: string };
  /** Unique per replica. */
  clientId: string;
  /** Largest uplink accepted, bytes; bigger ones are dropped and counted. */
  maxPayloadBytes: number;
  counters: Counters;
  log: Logger;
}

export interface MqttBridge extends DeviceLink {
  /** Starts consuming uplink; until then the processor sees nothing. */
  start(processor: UplinkProcessor): Promise<void>;
  /** Waits for uplink in progress, then disconnects. */
  close(): Promise<void>;
}

/**
 * The MQTT side of the device link: protobuf envelopes down (QoS 1, on the device's own topic)
 * and up (binary or JSON). The device id is always taken from the topic, which the broker only
 * lets that device publish to. Malformed and oversized payloads are dropped, logged and counted;
 * nothing a device sends can throw out of here.
 */
export async function connectMqttBridge(opts: MqttBridgeOptions): Promise<MqttBridge> {
  const { log, counters } = opts;
  const client: MqttClient = await mqtt.connectAsync(opts.url, {
    clientId: opts.clientId,
    ca: opts.tls.ca,
    cert: opts.tls.cert,
    key: opts.tls.key,
    protocolVersion: 4,
    clean: true,
    reconnectPeriod: 1000,
    connectTimeout: 10_000,
  });
  (client.stream as unknown as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
  enableNoDelay(client);
  client.on("error", (err) => log.warn({ err: err.message }, "mqtt bridge error"));
  client.on("reconnect", () => log.info("mqtt bridge reconnecting"));
  const queue = createKeyedQueue((err, deviceId) => log.error({ err, deviceId }, "uplink processing failed"));
  const drop = (reason: string, topic: string) => {
    counters.inc("tether_uplink_dropped_total", { reason });
    log.warn({ topic: topic.slice(0, 200), reason }, "uplink dropped");
  };

  function onMessage(processor: UplinkProcessor, topic: string, payload: Buffer) {
    const t = parseDeviceTopic(topic);
    if (!t || t.channel === "down") return drop("bad_topic", topic);
    if (payload.length > opts.maxPayloadBytes) return drop("oversized", topic);
    if (t.channel === "presence") {
      const text = payload.toString("utf8");
      if (text !== PRESENCE_ONLINE && text !== PRESENCE_OFFLINE) return drop("malformed", topic);
      void queue.push(t.deviceId, () => processor.presence(t.deviceId, text === PRESENCE_ONLINE));
      return;
    }
    if (t.channel === "metrics") {
      const text = payload.toString("utf8");
      void queue.push(t.deviceId, () => processor.plainMetric(t.deviceId, t.metric!, text));
      return;
    }
    let up: Uplink;
    try {
      up = t.channel === "up" ? fromBinary(UplinkSchema, payload) : fromJsonString(UplinkSchema, payload.toString("utf8"));
    } catch {
      return drop("malformed", topic);
    }
    counters.inc("tether_uplink_received_total", { kind: up.body.case ?? "empty" });
    void queue.push(t.deviceId, () => processor.handle(t.deviceId, up));
  }

  return {
    async send(deviceId, message) {
      await client.publishAsync(downlinkTopic(deviceId), Buffer.from(toBinary(DownlinkSchema, message)), { qos: 1 });
    },
    async start(processor) {
      client.on("message", (topic, payload) => onMessage(processor, topic, payload));
      // Re-subscribed automatically on reconnect (clean session): mqtt.js resubscribes by default.
      await client.subscribeAsync({ [ALL_UPLINKS]: { qos: 1 }, [ALL_JSON_UPLINKS]: { qos: 1 }, [ALL_PRESENCE]: { qos: 1 }, [ALL_METRICS]: { qos: 1 } });
      log.info({ url: opts.url }, "mqtt bridge consuming uplink");
    },
    async close() {
      // Stop taking uplink, finish what arrived (it may still send downlink), then disconnect.
      await client.unsubscribeAsync([ALL_UPLINKS, ALL_JSON_UPLINKS, ALL_PRESENCE, ALL_METRICS]).catch(() => {});
      await queue.drain();
      await client.endAsync();
    },
  };
}
