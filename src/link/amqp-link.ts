import { toBinary } from "@bufbuild/protobuf";
import type { Channel, ChannelModel, ConsumeMessage } from "amqplib";
import { DownlinkSchema } from "../../gen/tether/device/v1/downlink_pb.js";
import { assertWithinBounds } from "../core/device-bounds.js";
import type { AmqpSession } from "../bus/amqp-connection.js";
import type { Counters, DeviceLink } from "../core/ports/index.js";
import type { UplinkIntake } from "../core/ports/uplink-intake.js";
import type { Logger } from "../log.js";
import { downlinkTopic, routingKeyToTopic, topicToRoutingKey, UPLINK_ROUTING_PATTERNS } from "../protocol/topics.js";
import { createUplinkDecoder } from "./uplink-decode.js";

/** The exchange RabbitMQ's MQTT plugin publishes to and delivers from. */
export const MQTT_EXCHANGE = "amq.topic";

export interface AmqpLinkOptions {
  session: AmqpSession;
  /** The device uplink queue is `{prefix}.device-uplink`. */
  prefix: string;
  queueType: "quorum" | "classic";
  /** Largest uplink accepted, bytes; bigger ones are dropped and counted. */
  maxPayloadBytes: number;
  /** Per-device uplink token bucket; above it messages are dropped (acked) as `rate_limited`. */
  uplinkLimit?: { ratePerS: number; burst: number };
  /** Device messages held unacked while they are handed to the intake. */
  prefetch: number;
  counters: Counters;
  log: Logger;
}

export interface AmqpLink extends DeviceLink {
  /** Starts consuming device uplink into `intake`. */
  start(intake: UplinkIntake): Promise<void>;
  /** Stops consuming and waits until what was taken is handed to the intake. */
  close(): Promise<void>;
  /** True while the AMQP connection is up (readiness). */
  connected(): boolean;
}

/**
 * The device link when devices talk MQTT to RabbitMQ's MQTT plugin and Tether talks AMQP to the
 * same broker. Downlink: the protobuf `Downlink` published persistently, with a confirm, to
 * `amq.topic` under the routing key of the device's MQTT downlink topic; RabbitMQ keeps it in
 * the device's QoS 1 session queue while the device is offline. Uplink: one durable queue bound
 * to every device uplink topic, decoded exactly as the MQTT bridge does (`uplink-decode.ts`),
 * submitted to the intake and acked only once the intake took it (durably queued).
 */
export function createAmqpLink(o: AmqpLinkOptions): AmqpLink {
  const { session, log } = o;
  const queue = `${o.prefix}.device-uplink`;
  const decode = createUplinkDecoder({ maxPayloadBytes: o.maxPayloadBytes, counters: o.counters, log, limit: o.uplinkLimit });
  let consuming: { ch: Channel; tag: string } | undefined;
  let intake: UplinkIntake | undefined;
  let stopped = false;
  let pending = 0;
  const idle: Array<() => void> = [];

  function onMessage(ch: Channel, msg: ConsumeMessage) {
    const settle = (ok: boolean) => {
      try {
        if (ok) ch.ack(msg);
        else ch.nack(msg, false, true);
      } catch {
        // The channel died: the broker redelivers the message to the next consumer.
      }
    };
    const topic = routingKeyToTopic(msg.fields.routingKey) ?? msg.fields.routingKey;
    const item = decode(topic, msg.content);
    if (!item) return settle(true); // dropped and counted: acknowledging it is the decision
    pending++;
    // Submitted in arrival order (the intake publishes in call order), acked once durable.
    intake!
      .submit(item)
      .then(
        () => settle(true),
        (err: unknown) => {
          log.error({ err, deviceId: item.deviceId }, "device uplink not taken; requeued");
          settle(false);
        },
      )
      .finally(() => {
        if (--pending === 0) for (const w of idle.splice(0)) w();
      });
  }

  async function consume(conn: ChannelModel) {
    if (stopped) return;
    const ch = await conn.createChannel();
    ch.on("error", (err: Error) => log.warn({ err: err.message }, "amqp device-uplink channel error"));
    await ch.assertQueue(queue, { durable: true, arguments: { "x-queue-type": o.queueType, "x-single-active-consumer": true } });
    for (const pattern of UPLINK_ROUTING_PATTERNS) await ch.bindQueue(queue, MQTT_EXCHANGE, pattern);
    await ch.prefetch(o.prefetch);
    const { consumerTag } = await ch.consume(queue, (msg) => msg && onMessage(ch, msg), { noAck: false });
    consuming = { ch, tag: consumerTag };
  }

  return {
    connected: () => o.session.isConnected(),
    async send(deviceId, message) {
      assertWithinBounds(DownlinkSchema, message);
      await session.publish(MQTT_EXCHANGE, topicToRoutingKey(downlinkTopic(deviceId)), Buffer.from(toBinary(DownlinkSchema, message)), { persistent: true });
    },
    async start(target) {
      intake = target;
      await session.addSetup(consume);
      log.info({ queue }, "consuming device uplink from RabbitMQ (MQTT plugin)");
    },
    async close() {
      stopped = true;
      const c = consuming;
      consuming = undefined;
      if (c) await c.ch.cancel(c.tag).catch(() => {});
      if (pending > 0) await new Promise<void>((r) => idle.push(r));
      await intake?.drain();
      await c?.ch.close().catch(() => {});
    },
  };
}
