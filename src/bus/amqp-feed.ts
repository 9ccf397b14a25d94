import { randomUUID } from "node:crypto";
import { type DescMessage, fromBinary, type MessageShape, toBinary } from "@bufbuild/protobuf";
import type { ChangeFeed } from "../core/ports/index.js";
import type { SampleRecord } from "../core/telemetry/sample.js";
import type { Logger } from "../log.js";
import type { AmqpSession } from "./amqp-connection.js";
import { createMemoryFeed } from "./memory-feed.js";

/** How a feed's items travel: several items per AMQP message, so a burst costs one publish. */
export interface FeedCodec<T> {
  encode(items: T[]): Buffer;
  decode(content: Buffer): T[];
}

/** Protobuf binary, each message prefixed with its length (uint32 BE). */
export function protobufCodec<D extends DescMessage>(schema: D): FeedCodec<MessageShape<D>> {
  return {
    encode(items) {
      const parts = items.flatMap((m) => {
        const bytes = toBinary(schema, m);
        const len = Buffer.alloc(4);
        len.writeUInt32BE(bytes.length);
        return [len, bytes];
      });
      return Buffer.concat(parts);
    },
    decode(content) {
      const out: MessageShape<D>[] = [];
      for (let at = 0; at + 4 <= content.length; ) {
        const len = content.readUInt32BE(at);
        out.push(fromBinary(schema, content.subarray(at + 4, at + 4 + len)));
        at += 4 + len;
      }
      return out;
    },
  };
}

/** Telemetry samples as a JSON array (times as ISO strings). */
export const sampleCodec: FeedCodec<SampleRecord> = {
  encode: (items) => Buffer.from(JSON.stringify(items)),
  decode: (content) =>
    (JSON.parse(content.toString("utf8")) as Array<Omit<SampleRecord, "time"> & { time: string }>).map((s) => ({ ...s, time: new Date(s.time) })),
};

/** JSON for small internal events (revocations, rights and job changes); `revive` restores Dates. */
export function jsonCodec<T>(revive: (raw: T) => T = (raw) => raw): FeedCodec<T> {
  return {
    encode: (items) => Buffer.from(JSON.stringify(items)),
    decode: (content) => (JSON.parse(content.toString("utf8")) as T[]).map(revive),
  };
}

export interface AmqpFeedsOptions {
  session: AmqpSession;
  /** The topic exchange every replica binds to, e.g. `tether.events`. */
  exchange: string;
  log: Logger;
  /** Identifies this replica's messages, so they are not delivered twice here. @default a random UUID */
  replicaId?: string;
  /** How long items are gathered into one message, ms. @default 2 */
  batchMs?: number;
}

/** Most items in one AMQP message. */
const MAX_BATCH = 500;

/**
 * ChangeFeeds that reach every replica through one RabbitMQ topic exchange. Each replica binds its
 * own exclusive, auto-delete queue; a published item is delivered to local watchers at once and
 * skipped when it comes back (origin header), so watchers on the publishing replica never wait for
 * the broker. Best effort, like the port says: while the broker is unreachable other replicas miss
 * changes (watchers re-read the store when they need certainty); local delivery never stops.
 */
export function createAmqpFeeds(o: AmqpFeedsOptions) {
  const replicaId = o.replicaId ?? randomUUID();
  const batchMs = o.batchMs ?? 2;
  const feeds = new Map<string, { local: ChangeFeed<unknown>; codec: FeedCodec<unknown>; onError: (err: unknown) => void }>();
  let setupAdded: Promise<void> | undefined;

  async function setup(conn: Parameters<Parameters<AmqpSession["addSetup"]>[0]>[0]) {
    const ch = await conn.createChannel();
    ch.on("error", (err: Error) => o.log.warn({ err: err.message }, "amqp feed channel error"));
    await ch.assertExchange(o.exchange, "topic", { durable: true });
    const q = await ch.assertQueue("", { exclusive: true, autoDelete: true, durable: false });
    for (const name of feeds.keys()) await ch.bindQueue(q.queue, o.exchange, name);
    await ch.consume(
      q.queue,
      (msg) => {
        if (!msg || msg.properties.headers?.["x-tether-origin"] === replicaId) return;
        const feed = feeds.get(msg.fields.routingKey);
        if (!feed) return;
        let items: unknown[];
        try {
          items = feed.codec.decode(msg.content);
        } catch (err) {
          return feed.onError(err);
        }
        for (const item of items) feed.local.publish(item);
      },
      { noAck: true },
    );
  }

  return {
    replicaId,
    /**
     * A feed named `name` (also its routing key). Create every feed before `start()`: the bindings
     * are made once per connection.
     */
    feed<T>(name: string, codec: FeedCodec<T>, onError: (err: unknown) => void = () => {}): ChangeFeed<T> {
      const local = createMemoryFeed<T>(onError);
      feeds.set(name, { local: local as ChangeFeed<unknown>, codec: codec as FeedCodec<unknown>, onError });
      let pending: T[] = [];
      // biome-ignore lint/correctness/noUnusedVariables: read by the ??= in publish (one timer per batch)
      let timer: NodeJS.Timeout | undefined;
      const flush = () => {
        timer = undefined;
        while (pending.length > 0) {
          const items = pending.slice(0, MAX_BATCH);
          pending = pending.slice(items.length);
          const sent = o.session.publishBestEffort(o.exchange, name, codec.encode(items), { headers: { "x-tether-origin": replicaId } });
          if (!sent) o.log.debug({ feed: name, items: items.length }, "feed items not sent to other replicas (no connection)");
        }
      };
      return {
        publish(item) {
          local.publish(item);
          pending.push(item);
          if (pending.length >= MAX_BATCH) flush();
          else timer ??= setTimeout(flush, batchMs);
        },
        subscribe: (handler) => local.subscribe(handler),
      };
    },
    /** Binds this replica's queue and starts receiving other replicas' items (again after every reconnect). */
    start(): Promise<void> {
      return (setupAdded ??= o.session.addSetup(setup));
    },
  };
}
