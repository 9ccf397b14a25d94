import { fromBinary, toBinary } from "@bufbuild/protobuf";
import type { Channel, ChannelModel, ConsumeMessage } from "amqplib";
import { UplinkSchema } from "../../gen/tether/device/v1/uplink_pb.js";
import { isConnectivityReason } from "../core/connectivity/connectivity-reason.js";
import { createKeyedQueue } from "../core/keyed-queue.js";
import type { Counters } from "../core/ports/index.js";
import type { UplinkHandler, UplinkIntake, UplinkItem } from "../core/ports/uplink-intake.js";
import type { Logger } from "../log.js";
import type { AmqpSession } from "./amqp-connection.js";

export interface AmqpUplinkOptions {
  session: AmqpSession;
  /** Queue names are `{prefix}.uplink.{n}` and `{prefix}.uplink.dead`. */
  prefix: string;
  /** Number of partition queues; a device always maps to the same one. */
  partitions: number;
  /** `quorum` (replicated, delivery limit) or `classic` (single node brokers without quorum queues). */
  queueType: "quorum" | "classic";
  /** Deliveries of one message before it is dead-lettered (quorum queues only). */
  deliveryLimit: number;
  /** Unacknowledged messages per partition held by this replica. */
  prefetch: number;
  handler: UplinkHandler;
  /**
   * Runs after the handler succeeded and before the broker ack, e.g. waiting until the telemetry
   * the item carried is stored. Its failure counts as a processing failure.
   */
  beforeAck?: (item: UplinkItem) => Promise<void> | undefined;
  counters: Counters;
  log: Logger;
}

export interface AmqpUplink extends UplinkIntake {
  /** Starts consuming every partition (single active consumer: one replica at a time per partition). */
  start(): Promise<void>;
  /** Stops consuming, finishes (and acks) what this replica holds. */
  close(): Promise<void>;
}

const HEADER_DEVICE = "x-tether-device";
const HEADER_METRIC = "x-tether-metric";
const HEADER_REASON = "x-tether-reason";
const HEADER_REMOTE = "x-tether-remote-address";

/** FNV-1a: a stable, cheap hash so every replica maps a device to the same partition. */
export function partitionOf(deviceId: string, partitions: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < deviceId.length; i++) {
    h ^= deviceId.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % partitions;
}

/** An item as an AMQP message: the kind in `type`, the device in a header, the payload as sent. */
export function encodeItem(item: UplinkItem): { content: Buffer; type: string; headers: Record<string, string> } {
  switch (item.kind) {
    case "uplink":
      return { content: Buffer.from(toBinary(UplinkSchema, item.uplink)), type: "uplink", headers: { [HEADER_DEVICE]: item.deviceId } };
    case "presence": {
      const headers: Record<string, string> = { [HEADER_DEVICE]: item.deviceId };
      if (item.reason) headers[HEADER_REASON] = item.reason;
      if (item.remoteAddress) headers[HEADER_REMOTE] = item.remoteAddress;
      return { content: Buffer.from(item.online ? "online" : "offline"), type: "presence", headers };
    }
    case "alive":
      return { content: Buffer.alloc(0), type: "alive", headers: { [HEADER_DEVICE]: item.deviceId } };
    case "metric":
      return { content: Buffer.from(item.text), type: "metric", headers: { [HEADER_DEVICE]: item.deviceId, [HEADER_METRIC]: item.metric } };
  }
}

export function decodeItem(msg: Pick<ConsumeMessage, "content" | "properties">): UplinkItem | undefined {
  const deviceId = msg.properties.headers?.[HEADER_DEVICE];
  if (typeof deviceId !== "string") return undefined;
  switch (msg.properties.type) {
    case "uplink":
      return { kind: "uplink", deviceId, uplink: fromBinary(UplinkSchema, msg.content) };
    case "presence": {
      const item: UplinkItem = { kind: "presence", deviceId, online: msg.content.toString() === "online" };
      const reason = msg.properties.headers?.[HEADER_REASON];
      const remote = msg.properties.headers?.[HEADER_REMOTE];
      if (typeof reason === "string" && isConnectivityReason(reason)) item.reason = reason;
      if (typeof remote === "string") item.remoteAddress = remote;
      return item;
    }
    case "alive":
      return { kind: "alive", deviceId };
    case "metric": {
      const metric = msg.properties.headers?.[HEADER_METRIC];
      return typeof metric === "string" ? { kind: "metric", deviceId, metric, text: msg.content.toString("utf8") } : undefined;
    }
  }
  return undefined;
}

/**
 * The production UplinkIntake: durable partition queues in RabbitMQ.
 *
 * - `submit` publishes persistently to `{prefix}.uplink.{hash(device) % partitions}` and resolves
 *   after the broker's publisher confirm, so a transport may acknowledge the device only then.
 * - Every replica consumes every partition with `x-single-active-consumer`: one replica at a time
 *   receives a partition, in order, and another takes over (with the unacked messages) when it dies.
 * - Items run through a per-device keyed queue (in order per device, concurrent across devices)
 *   and are acked only after the handler resolved, i.e. after the database commit (and, through
 *   `beforeAck`, after the telemetry they carried is stored).
 * - A failure nacks with requeue after a backoff; a quorum queue dead-letters a message to
 *   `{prefix}.uplink.dead` after `deliveryLimit` deliveries.
 */
export function createAmqpUplink(o: AmqpUplinkOptions): AmqpUplink {
  const { session, log } = o;
  const queueName = (n: number) => `${o.prefix}.uplink.${n}`;
  const deadQueue = `${o.prefix}.uplink.dead`;
  const keyed = createKeyedQueue((err, deviceId) => log.error({ err, deviceId }, "uplink processing failed"));
  const submitting = new Set<Promise<void>>();
  let processing = 0;
  const idleWaiters: Array<() => void> = [];
  let consuming: { ch: Channel; tags: string[] } | undefined;
  let stopped = false;
  let started: Promise<void> | undefined;

  const queueArgs = (): Record<string, unknown> =>
    o.queueType === "quorum"
      ? {
          "x-queue-type": "quorum",
          "x-single-active-consumer": true,
          "x-delivery-limit": o.deliveryLimit,
          "x-dead-letter-exchange": "",
          "x-dead-letter-routing-key": deadQueue,
        }
      : { "x-queue-type": "classic", "x-single-active-consumer": true, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": deadQueue };

  async function declare(conn: ChannelModel): Promise<void> {
    const ch = await conn.createChannel();
    ch.on("error", (err: Error) => log.warn({ err: err.message }, "amqp uplink topology channel error"));
    await ch.assertQueue(deadQueue, { durable: true, arguments: { "x-queue-type": o.queueType } });
    for (let n = 0; n < o.partitions; n++) await ch.assertQueue(queueName(n), { durable: true, arguments: queueArgs() });
    await ch.close();
  }
  // Topology first, so submits before start() land in existing queues.
  const declared = session.addSetup(declare);

  function settle(ch: Channel, msg: ConsumeMessage, ok: boolean): void {
    // After a reconnect the old channel is gone; the broker redelivers what it had not seen acked.
    try {
      if (ok) ch.ack(msg);
      else ch.nack(msg, false, true);
    } catch {
      log.debug("uplink ack skipped: its channel is closed (the message will be redelivered)");
    }
  }

  function onMessage(ch: Channel, msg: ConsumeMessage): void {
    let item: UplinkItem | undefined;
    try {
      item = decodeItem(msg);
    } catch {
      item = undefined;
    }
    if (!item) {
      o.counters.inc("tether_uplink_dropped_total", { reason: "bad_queue_message" });
      log.warn({ queue: msg.fields.routingKey }, "unreadable uplink queue message dead-lettered");
      ch.nack(msg, false, false);
      return;
    }
    const it = item;
    processing++;
    let ok = false;
    void keyed
      .push(it.deviceId, async () => {
        await o.handler.process(it);
        ok = true;
      })
      .then(async () => {
        if (ok && o.beforeAck) {
          try {
            await o.beforeAck(it);
          } catch (err) {
            ok = false;
            log.error({ err, deviceId: it.deviceId }, "uplink not safe to acknowledge");
          }
        }
        if (!ok) {
          // Redelivery count from the quorum queue; back off before handing it back.
          const count = Number(msg.properties.headers?.["x-delivery-count"] ?? 0);
          o.counters.inc("tether_uplink_retries_total");
          await new Promise((r) => setTimeout(r, Math.min(250 * 2 ** count, 5000)));
        }
        settle(ch, msg, ok);
      })
      .finally(() => {
        if (--processing === 0) for (const w of idleWaiters.splice(0)) w();
      });
  }

  async function consume(conn: ChannelModel): Promise<void> {
    if (stopped) return;
    const ch = await conn.createChannel();
    ch.on("error", (err: Error) => log.warn({ err: err.message }, "amqp uplink consumer channel error"));
    await ch.prefetch(o.prefetch);
    const tags: string[] = [];
    for (let n = 0; n < o.partitions; n++) {
      const { consumerTag } = await ch.consume(queueName(n), (msg) => msg && onMessage(ch, msg), { noAck: false });
      tags.push(consumerTag);
    }
    consuming = { ch, tags };
    log.info({ partitions: o.partitions, prefix: o.prefix }, "consuming uplink queues");
  }

  return {
    submit(item) {
      const { content, type, headers } = encodeItem(item);
      const p = declared.then(() =>
        session.publish("", queueName(partitionOf(item.deviceId, o.partitions)), content, {
          persistent: true,
          type,
          headers,
          contentType: "application/octet-stream",
        }),
      );
      submitting.add(p);
      void p.catch(() => {}).finally(() => submitting.delete(p));
      return p;
    },
    async drain() {
      while (submitting.size > 0) await Promise.allSettled([...submitting]);
    },
    start() {
      return (started ??= declared.then(() => session.addSetup(consume)));
    },
    async close() {
      stopped = true;
      const c = consuming;
      consuming = undefined;
      if (c) for (const tag of c.tags) await c.ch.cancel(tag).catch(() => {});
      if (processing > 0) await new Promise<void>((r) => idleWaiters.push(r));
      await keyed.drain();
      await c?.ch.close().catch(() => {});
    },
  };
}
