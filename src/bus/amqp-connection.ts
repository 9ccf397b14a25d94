import type { ChannelModel, ConfirmChannel, Options } from "amqplib";
import { type Logger, redactUrl } from "../log.js";
import type { AmqpTls } from "./amqp-tls.js";

export interface AmqpSessionOptions {
  /** `amqp://user:pass@host:5672/vhost` (or `amqps://`). */
  url: string;
  /** Shown in the broker's connection list (`connection_name`). */
  name: string;
  /** CA and client certificate for `amqps://` (see amqp-tls.ts); passed to `tls.connect`. */
  tls?: AmqpTls;
  log: Logger;
  /** First and largest reconnect delay, ms (doubled each failed attempt, ±20 % jitter). @default 100, 5000 */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** How long the first connection may take before startup fails, ms. @default 30000 */
  startupTimeoutMs?: number;
  /** How long a confirmed publish may wait for a connection and a confirm, retries included, ms. @default 30000 */
  publishTimeoutMs?: number;
}

/** Runs on every (re)connect: declares topology, opens channels, starts consumers. */
export type AmqpSetup = (conn: ChannelModel) => Promise<void>;

/**
 * One AMQP connection that heals itself. Setups re-declare topology and re-consume after every
 * reconnect; confirmed publishes wait for a connection and retry across reconnects, so a publish
 * that resolved is on disk in the broker (at-least-once: a retry may duplicate it).
 */
export interface AmqpSession {
  /** Adds a setup; it runs now if connected, and again after every reconnect (in registration order). */
  addSetup(setup: AmqpSetup): Promise<void>;
  /** Publishes and resolves when the broker confirmed it; retries across reconnects until the timeout. */
  publish(exchange: string, routingKey: string, content: Buffer, options?: Options.Publish): Promise<void>;
  /** Publishes without waiting for a confirm; false if there is no connection right now (the message is dropped). */
  publishBestEffort(exchange: string, routingKey: string, content: Buffer, options?: Options.Publish): boolean;
  /** True between a completed setup and the next connection loss. */
  isConnected(): boolean;
  close(): Promise<void>;
}

interface Live {
  conn: ChannelModel;
  pub: ConfirmChannel;
  /** Resolves when the publisher channel may take more (after a `false` from publish). */
  drained?: Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function connectAmqp(o: AmqpSessionOptions): Promise<AmqpSession> {
  const log = o.log;
  const minBackoff = o.minBackoffMs ?? 100;
  const maxBackoff = o.maxBackoffMs ?? 5000;
  const setups: AmqpSetup[] = [];
  let live: Live | undefined;
  let closing = false;
  const readyWaiters: Array<() => void> = [];
  let everConnected = false;
  let attempts = 0;

  const wakeReady = () => {
    for (const w of readyWaiters.splice(0)) w();
  };

  /** Waits for a usable connection, or throws after `deadline` or on close. */
  async function ready(deadline: number): Promise<Live> {
    while (!live) {
      if (closing) throw new Error("amqp session closed");
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("amqp: no connection to the broker");
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        readyWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return live;
  }

  /** One connection's life: connect, run setups, wait until it is lost. */
  async function connectOnce(): Promise<void> {
    // Loaded on first use: the embedded default never needs the AMQP client (~20 ms of start-up).
    const { default: amqp } = await import("amqplib");
    const conn = await amqp.connect(o.url, { clientProperties: { connection_name: o.name }, ...o.tls });
    const lost = new Promise<void>((resolve) => {
      conn.on("close", () => resolve());
      conn.on("error", (err: Error) => log.warn({ err: err.message }, "amqp connection error"));
    });
    conn.on("blocked", (reason: string) => log.warn({ reason }, "amqp connection blocked by the broker"));
    try {
      const pub = await conn.createConfirmChannel();
      pub.on("error", (err: Error) => log.warn({ err: err.message }, "amqp publisher channel error"));
      // A dead publisher channel makes the whole connection useless to us: start over.
      pub.on("close", () => void conn.close().catch(() => {}));
      const candidate: Live = { conn, pub };
      for (const s of setups) await s(conn);
      live = candidate;
    } catch (err) {
      await conn.close().catch(() => {});
      throw err;
    }
    everConnected = true;
    attempts = 0;
    log.info("amqp connected");
    wakeReady();
    await lost;
    live = undefined;
    if (!closing) log.warn("amqp connection lost; reconnecting");
  }

  const loop = (async () => {
    while (!closing) {
      try {
        await connectOnce();
      } catch (err) {
        log.warn({ err: (err as Error).message, attempt: attempts + 1 }, "amqp connect failed");
      }
      if (closing) break;
      const base = Math.min(maxBackoff, minBackoff * 2 ** Math.min(attempts++, 20));
      await sleep(base * (0.8 + Math.random() * 0.4));
    }
  })();

  // Startup waits for the first connection (with its setups), or fails.
  try {
    await ready(Date.now() + (o.startupTimeoutMs ?? 30_000));
  } catch (err) {
    closing = true;
    wakeReady();
    await loop;
    throw new Error(`cannot connect to RabbitMQ (${redactUrl(o.url)}): ${(err as Error).message}`);
  }

  const session: AmqpSession = {
    async addSetup(setup) {
      setups.push(setup);
      if (live) await setup(live.conn);
    },

    async publish(exchange, routingKey, content, options = {}) {
      const deadline = Date.now() + (o.publishTimeoutMs ?? 30_000);
      for (;;) {
        const l = await ready(deadline);
        try {
          if (l.drained) await l.drained;
          await new Promise<void>((resolve, reject) => {
            const ok = l.pub.publish(exchange, routingKey, content, options, (err: unknown) =>
              err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve(),
            );
            if (!ok && !l.drained) {
              l.drained = new Promise<void>((r) => l.pub.once("drain", () => r())).finally(() => (l.drained = undefined));
            }
          });
          return;
        } catch (err) {
          // Nacked by the broker or the channel died before the confirm: publish again (duplicates are harmless).
          if (closing || Date.now() >= deadline) throw err;
          log.debug({ err: (err as Error).message, exchange, routingKey }, "amqp publish not confirmed; retrying");
          await sleep(100);
        }
      }
    },

    publishBestEffort(exchange, routingKey, content, options = {}) {
      if (!live) return false;
      try {
        live.pub.publish(exchange, routingKey, content, options);
        return true;
      } catch {
        return false;
      }
    },

    isConnected: () => live !== undefined,

    async close() {
      if (closing) return loop;
      closing = true;
      wakeReady();
      const l = live;
      if (l) {
        // Outstanding confirms first (a broker that stopped answering gets 5 s).
        await Promise.race([l.pub.waitForConfirms().catch(() => {}), new Promise((r) => setTimeout(r, 5000).unref())]);
        await l.conn.close().catch(() => {});
      }
      await loop;
      if (everConnected) log.info("amqp connection closed");
    },
  };
  return session;
}
