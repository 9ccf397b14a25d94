import { type EventEmitter, once } from "node:events";
import { toBinary } from "@bufbuild/protobuf";
import mqtt, { type MqttClient } from "mqtt";
import type { Logger } from "pino";
import { redactUrl } from "../log.js";
import { DownlinkSchema } from "../../gen/tether/device/v1/downlink_pb.js";
import { assertWithinBounds } from "../core/device-bounds.js";
import type { Counters, DeviceLink } from "../core/ports/index.js";
import type { UplinkIntake, UplinkItem } from "../core/ports/uplink-intake.js";
import { ackWhenTaken } from "./ack-when-taken.js";
import { enableNoDelay } from "../protocol/mqtt-no-delay.js";
import { ALL_JSON_UPLINKS, ALL_METRICS, ALL_PRESENCE, ALL_UPLINKS, downlinkTopic } from "../protocol/topics.js";
import type { PresenceNotes } from "./broker-presence.js";
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
  /** MQTT keepalive, seconds: a silent broker is given up after 1.5 times this. @default 30 */
  keepaliveS?: number;
  /**
   * With `sharedGroup` (MQTT 5): how long the broker keeps the bridge's session after a lost
   * connection, seconds, queueing its share of QoS 1 uplink until it is back (a partition, a
   * restart with the same client id). 0 or unset: a clean session.
   */
  sessionExpiryS?: number;
  /**
   * What the embedded broker knows about each presence message (why a session ended, the remote
   * address), taken as the message arrives. Unset (external brokers): presence says what it says.
   */
  presenceNotes?: PresenceNotes;
  /** Per-device uplink token bucket; above it messages are dropped as `rate_limited`. Unset: no limit. */
  uplinkLimit?: { ratePerS: number; burst: number };
  counters: Counters;
  log: Logger;
}

export interface MqttBridge extends DeviceLink {
  /** Whether the broker connection is up right now (health: the broker link dependency). */
  connected(): boolean;
  /** Calls `handler(false)` when an established broker connection is lost, `handler(true)` when it is back. */
  onLinkChange(handler: (up: boolean) => void): void;
  /** Subscribes to presence again, so the broker re-sends every device's retained presence. */
  resyncPresence(): Promise<void>;
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
  const persistent = opts.sharedGroup !== undefined && (opts.sessionExpiryS ?? 0) > 0;
  const client: MqttClient = mqtt.connect(opts.url, {
    clientId: opts.clientId,
    ca: opts.tls.ca,
    cert: opts.tls.cert,
    key: opts.tls.key,
    protocolVersion: opts.sharedGroup ? 5 : 4,
    // Measured on Mosquitto 2.0.11: a shared-subscription member's unacknowledged messages are not
    // handed to the other members when it dies, and a member with a kept session goes on receiving
    // its share of new uplink while its replica is gone. A kept session therefore loses nothing to
    // a partition or a broker restart, but strands a crashed replica's share until it expires (or
    // the replica is back with the same client id); a clean session is the opposite. Uplink is
    // recovered either way by the protocol: tasks by the resend after the ack timeout (the device
    // replays its cached ack and result), telemetry by end-to-end receipts (the device resends
    // what Tether has not stored). See the README's "Replicas" section.
    clean: !persistent,
    properties: persistent ? { sessionExpiryInterval: opts.sessionExpiryS } : undefined,
    reconnectPeriod: 1000,
    connectTimeout: 10_000,
    keepalive: opts.keepaliveS ?? 30,
  });
  // Installed before the first packet: a kept session's queued uplink arrives right after CONNACK,
  // and must wait for the intake rather than be acknowledged and dropped.
  let intake: UplinkIntake | undefined;
  let intakeReady!: () => void;
  const ready = new Promise<void>((r) => (intakeReady = r));
  let closing = false;
  const decode = createUplinkDecoder({ maxPayloadBytes: opts.maxPayloadBytes, counters, log, limit: opts.uplinkLimit });
  /** Hands an item to the intake, retrying until it takes it: the broker has no PUBACK until then. */
  async function submitUntilTaken(item: UplinkItem): Promise<void> {
    await ready;
    for (let waitMs = 200; ; waitMs = Math.min(waitMs * 2, 5000)) {
      try {
        return await intake!.submit(item);
      } catch (err) {
        if (closing) throw err;
        counters.inc("tether_uplink_intake_retries_total");
        log.error({ err, deviceId: item.deviceId, retryInMs: waitMs }, "uplink not taken; retrying (the broker has no PUBACK yet)");
        await new Promise((r) => setTimeout(r, waitMs));
      }
    }
  }
  const acks = ackWhenTaken(client, async (topic, payload) => {
    const item = decode(topic, payload);
    if (item?.kind === "presence") {
      const note = opts.presenceNotes?.take(item.deviceId, item.online);
      if (note?.reason) item.reason = note.reason;
      if (note?.remoteAddress) item.remoteAddress = note.remoteAddress;
    }
    if (item) await submitUntilTaken(item);
  });
  try {
    // Rejects on an "error" first, as mqtt.connectAsync does (mqtt.js types its client as its own
    // emitter interface; at run time it is a Node EventEmitter).
    await once(client as unknown as EventEmitter, "connect");
  } catch (err) {
    client.end(true);
    throw err;
  }
  (client.stream as unknown as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
  enableNoDelay(client);
  client.on("error", (err) => log.warn({ err: err.message }, "mqtt bridge error"));
  client.on("reconnect", () => log.info("mqtt bridge reconnecting"));
  const linkHandlers: Array<(up: boolean) => void> = [];
  let up = true;
  const setUp = (now: boolean) => {
    if (now === up || closing) return;
    up = now;
    if (now) log.info("mqtt bridge reconnected to the broker");
    else log.warn("mqtt bridge lost the broker");
    for (const h of linkHandlers) h(now);
  };
  client.on("connect", () => setUp(true));
  client.on("close", () => setUp(false));

  // Uplink goes to one replica of the group; presence goes to every replica (not shared), because
  // brokers do not send retained messages to shared subscriptions, and presence is retained state
  // that each replica must see when it starts. Processing it twice is harmless (idempotent).
  const share = (filter: string) => (opts.sharedGroup ? `$share/${opts.sharedGroup}/${filter}` : filter);
  const uplinkFilters = [share(ALL_UPLINKS), share(ALL_JSON_UPLINKS), ALL_PRESENCE, share(ALL_METRICS)];

  return {
    async send(deviceId, message) {
      assertWithinBounds(DownlinkSchema, message);
      await client.publishAsync(downlinkTopic(deviceId), Buffer.from(toBinary(DownlinkSchema, message)), { qos: 1 });
    },
    connected: () => client.connected,
    onLinkChange(handler) {
      linkHandlers.push(handler);
    },
    async resyncPresence() {
      await client.unsubscribeAsync(ALL_PRESENCE);
      await client.subscribeAsync(ALL_PRESENCE, { qos: 1 });
    },
    async start(target) {
      intake = target;
      intakeReady();
      // Re-subscribed automatically on reconnect (clean session): mqtt.js resubscribes by default.
      const granted = await client.subscribeAsync(Object.fromEntries(uplinkFilters.map((f) => [f, { qos: 1 as const }])));
      const refused = granted.filter((g) => g.qos > 2).map((g) => g.topic);
      if (refused.length > 0) throw new Error(`broker refused subscriptions: ${refused.join(", ")}`);
      log.info({ url: redactUrl(opts.url), sharedGroup: opts.sharedGroup }, "mqtt bridge consuming uplink");
    },
    async close() {
      closing = true; // a shutdown is not a lost broker
      // Stop taking uplink, finish what arrived (it may still send downlink), then disconnect.
      await client.unsubscribeAsync(uplinkFilters).catch(() => {});
      await intake?.drain();
      await acks.settled(); // the PUBACKs for what the intake took
      // A replica that stops on purpose ends its session: nothing should queue for it any more.
      await client.endAsync(false, persistent ? { properties: { sessionExpiryInterval: 0 } } : {});
    },
  };
}
