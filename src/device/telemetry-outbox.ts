/**
 * Store-and-forward for telemetry over MQTT. A broker's PUBACK only says the broker has a message;
 * a broker that crashes (or a RabbitMQ that restarts) loses what it held. So each batch is sent
 * with `receipt_requested` and kept here until Tether's UplinkReceipt says it is stored. Unreceipted
 * batches go out again, with the same `message_id`, after every reconnect and after a timeout
 * (doubling per batch up to 5 min); Tether stores a repeated sample once. The reconnect resend is
 * what recovers a broker crash; the timeout is for silent losses, and is long so that a database
 * outage (receipts wait for the commit) does not multiply the uplink.
 *
 * Memory is bounded: past `maxPending` batches the oldest is given up (its promise rejects).
 */
import type { Logger } from "pino";

export interface TelemetryOutboxOptions {
  /** First resend of an unreceipted batch, ms; doubles per resend up to 5 min. @default 30000 */
  timeoutMs?: number;
  /** Batches kept at most; past that the oldest is given up. @default 10000 */
  maxPending?: number;
}

interface Entry {
  payload: Buffer;
  resendAt: number;
  waitMs: number;
  resolve(): void;
  reject(err: Error): void;
}

const MAX_WAIT_MS = 300_000;

export class TelemetryOutbox {
  /** Insertion order is send order: resends keep the device's order. */
  private readonly pending = new Map<string, Entry>();
  private readonly timeoutMs: number;
  private readonly maxPending: number;
  private readonly emptyWaiters: Array<() => void> = [];
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Batches sent again because no receipt came in time or the connection was lost. */
  resent = 0;

  constructor(
    opts: TelemetryOutboxOptions,
    /** Publishes one payload (QoS 1) if connected; false when there is no connection now. */
    private readonly publish: (payload: Buffer) => boolean,
    private readonly log: Logger,
  ) {
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.maxPending = opts.maxPending ?? 10_000;
  }

  /** Keeps the batch and sends it; resolves on its receipt (rejects at once after `close`). */
  add(messageId: string, payload: Buffer): Promise<void> {
    const receipted = new Promise<void>((resolve, reject) => {
      if (this.closed) return reject(new Error("device closed"));
      if (this.pending.size >= this.maxPending) this.giveUpOldest();
      this.pending.set(messageId, { payload, resendAt: Date.now() + this.timeoutMs, waitMs: this.timeoutMs, resolve, reject });
      this.publish(payload);
      this.timer ??= setInterval(() => this.resendDue(), Math.min(1000, this.timeoutMs)).unref();
    });
    // Fire-and-forget callers must not crash their process when a batch is given up (closed, a
    // full outbox): the rejection is still there for callers that await it.
    receipted.catch(() => {});
    return receipted;
  }

  /** Tether's receipt: these batches are stored (or refused for good) and may be forgotten. */
  receipted(messageIds: readonly string[]): void {
    for (const id of messageIds) {
      const e = this.pending.get(id);
      if (!e) continue; // a receipt for a resend we already had one for
      this.pending.delete(id);
      e.resolve();
    }
    if (this.pending.size === 0) this.becameEmpty();
  }

  /** After a (re)connect: everything unreceipted goes out again, in order. */
  resendAll(): void {
    const now = Date.now();
    for (const e of this.pending.values()) this.resend(e, now);
  }

  /** Batches waiting for their receipt. */
  size(): number {
    return this.pending.size;
  }

  /** Resolves once every batch is receipted. */
  whenEmpty(): Promise<void> {
    if (this.pending.size === 0) return Promise.resolve();
    return new Promise((r) => this.emptyWaiters.push(r));
  }

  /** Gives up every batch (the device is closing). */
  close(): void {
    this.closed = true;
    const err = new Error("device closed before Tether's receipt");
    for (const e of this.pending.values()) e.reject(err);
    this.pending.clear();
    this.becameEmpty();
  }

  private resendDue(): void {
    const now = Date.now();
    for (const e of this.pending.values()) if (e.resendAt <= now) this.resend(e, now);
  }

  private resend(e: Entry, now: number): void {
    if (!this.publish(e.payload)) return; // offline: the reconnect resends
    this.resent++;
    e.waitMs = Math.min(e.waitMs * 2, MAX_WAIT_MS);
    e.resendAt = now + e.waitMs;
  }

  private giveUpOldest(): void {
    const [id, e] = this.pending.entries().next().value!;
    this.pending.delete(id);
    this.log.warn({ messageId: id, maxPending: this.maxPending }, "telemetry outbox full; oldest batch given up");
    e.reject(new Error("telemetry outbox full: batch given up before Tether's receipt"));
  }

  private becameEmpty(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    for (const w of this.emptyWaiters.splice(0)) w();
  }
}
