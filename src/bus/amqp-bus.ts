import { hostname } from "node:os";
import { DeviceSchema } from "../../gen/tether/v1/device_pb.js";
import { TaskSchema } from "../../gen/tether/v1/task_pb.js";
import type { TetherConfig } from "../config.js";
import type { Counters } from "../core/ports/index.js";
import type { UplinkHandler, UplinkItem } from "../core/ports/uplink-intake.js";
import type { Logger } from "../log.js";
import { connectAmqp } from "./amqp-connection.js";
import type { AmqpTls } from "./amqp-tls.js";
import { createAmqpFeeds, type FeedCodec, jsonCodec, protobufCodec, sampleCodec } from "./amqp-feed.js";
import { createAmqpUplink } from "./amqp-uplink.js";

/**
 * Everything Tether keeps in RabbitMQ, built from `config.amqp`: one self-healing connection, the
 * change feeds on `{prefix}.events`, and the durable uplink intake. The composition root picks
 * these over the in-process adapters when AMQP_URL is set.
 */
export async function startAmqpBus(config: TetherConfig["amqp"] & { url: string }, log: Logger, tls?: AmqpTls) {
  const session = await connectAmqp({ url: config.url, name: `tether ${hostname()} ${process.pid}`, log, tls });
  const feeds = createAmqpFeeds({ session, exchange: `${config.prefix}.events`, log });
  return {
    session,
    taskFeed: (onError: (err: unknown) => void) => feeds.feed("task", protobufCodec(TaskSchema), onError),
    deviceFeed: (onError: (err: unknown) => void) => feeds.feed("device", protobufCodec(DeviceSchema), onError),
    sampleFeed: (onError: (err: unknown) => void) => feeds.feed("sample", sampleCodec, onError),
    /** A feed of small JSON events (revocations, rights changes, job steps) under routing key `name`. */
    jsonFeed: <T>(name: string, onError: (err: unknown) => void, codec: FeedCodec<T> = jsonCodec<T>()) => feeds.feed(name, codec, onError),
    /** Binds this replica's feed queue; call after creating every feed. */
    startFeeds: () => feeds.start(),
    uplink: (handler: UplinkHandler, beforeAck: (item: UplinkItem) => Promise<void> | undefined, counters: Counters) =>
      createAmqpUplink({
        session,
        prefix: config.prefix,
        partitions: config.uplinkPartitions,
        queueType: config.queueType,
        deliveryLimit: config.deliveryLimit,
        prefetch: config.prefetch,
        handler,
        beforeAck,
        counters,
        log,
      }),
    close: () => session.close(),
  };
}

/** Whether an item carries samples for the telemetry writer (its ack then waits for their commit). */
export function carriesTelemetry(item: UplinkItem): boolean {
  return item.kind === "metric" || (item.kind === "uplink" && item.uplink.body.case === "telemetry");
}
