import { toBinary } from "@bufbuild/protobuf";
import mqtt, { type MqttClient } from "mqtt";
import type { Logger } from "pino";
import { DownlinkSchema } from "../../gen/tether/device/v1/downlink_pb.js";
import type { Counters, DeviceLink } from "../core/ports.js";
import type { UplinkIntake, UplinkItem } from "../core/uplink.js";
import { enableNoDelay } from "./no-delay.js";
import { ALL_JSON_UPLINKS, ALL_METRICS, ALL_PRESENCE, ALL_UPLINKS, downlinkTopic } from "./topics.js";
import { createUplinkDecoder } from "./uplink-decode.js";

export interface MqttBridgeOptions {
  /** e.g. `mqtts://127.0.0.1:8883`. */
  url: string;
  tls: { ca: string; cert: string; key: string };
  /** Unique per replica. */
  clientId: string;
  /**
   * MQTT 5 with shared subscriptions for an external broker that has them (Mosquitto): every
   * replica subscribes to `$share/{group}/…` and the broker hands each uplink message to one of
   * them. Unset: MQTT 3.1.1, plain subscriptions (the embedded broker, a single replica).
   */
  sharedGroup?: string;
  /** Largest uplink accepted, bytes; bigger ones are dropped and counted. */
  maxPayloadBytes: number;
  /** Per-device uplink token bucket; above it messages are dropped as `rate_limited`. Unset: no limit. */
  uplinkLimit?: { ratePerS: number; burst: number };
  counters: Counters;
  log: Logger;
}

export interface MqttBridge extends DeviceLink {
  /** Whether the broker connection is up right now (health: the broker link dependency). */
  connected(): boolean;
  /** Starts consuming uplink into `intake`; until then nothing is taken. */
  start(intake: UplinkIntake): Promise<void>;
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
    protocolVersion: opts.sharedGroup ? 5 : 4,
    // A clean session, on purpose. Measured on Mosquitto 2.0.11: a shared-subscription member's
    // unacknowledged messages are not handed to the other members when it dies, and a persistent
    // member session keeps receiving its share of new uplink while its replica is gone. Lost
    // in-flight task uplink is recovered by the protocol (resend after the ack timeout, the device
    // replays its cached ack and result); see the README's "Replicas" section.
    clean: true,
    reconnectPeriod: 1000,
    connectTimeout: 10_000,
  });
  (client.stream as unknown as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
  enableNoDelay(client);
  client.on("error", (err) => log.warn({ err: err.message }, "mqtt bridge error"));
  client.on("reconnect", () => log.info("mqtt bridge reconnecting"));
  let intake: UplinkIntake | undefined;
  const submit = (item: UplinkItem) => void intake?.submit(item).catch((err: unknown) => log.error({ err, deviceId: item.deviceId }, "uplink not taken"));
  const decode = createUplinkDecoder({ maxPayloadBytes: opts.maxPayloadBytes, counters, log, limit: opts.uplinkLimit });

  // Uplink goes to one replica of the group; presence goes to every replica (not shared), because
  // brokers do not send retained messages to shared subscriptions, and presence is retained state
  // that each replica must see when it starts. Processing it twice is harmless (idempotent).
  const share = (filter: string) => (opts.sharedGroup ? `$share/${opts.sharedGroup}/${filter}` : filter);
  const uplinkFilters = [share(ALL_UPLINKS), share(ALL_JSON_UPLINKS), ALL_PRESENCE, share(ALL_METRICS)];

  function onMessage(topic: string, payload: Buffer) {
    const item = decode(topic, payload);
    if (item) submit(item);
  }

  return {
    async send(deviceId, message) {
      await client.publishAsync(downlinkTopic(deviceId), Buffer.from(toBinary(DownlinkSchema, message)), { qos: 1 });
    },
    connected: () => client.connected,
    async start(target) {
      intake = target;
      client.on("message", onMessage);
      // Re-subscribed automatically on reconnect (clean session): mqtt.js resubscribes by default.
      const granted = await client.subscribeAsync(Object.fromEntries(uplinkFilters.map((f) => [f, { qos: 1 as const }])));
      const refused = granted.filter((g) => g.qos > 2).map((g) => g.topic);
      if (refused.length > 0) throw new Error(`broker refused subscriptions: ${refused.join(", ")}`);
      log.info({ url: opts.url, sharedGroup: opts.sharedGroup }, "mqtt bridge consuming uplink");
    },
    async close() {
      // Stop taking uplink, finish what arrived (it may still send downlink), then disconnect.
      await client.unsubscribeAsync(uplinkFilters).catch(() => {});
      await intake?.drain();
      await client.endAsync();
    },
  };
}
