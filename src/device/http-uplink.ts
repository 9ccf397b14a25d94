/**
 * Ordered, batched, retried uplink over HTTP (DeviceGatewayService.PublishUplink).
 *
 * The task executor sends ack, progress and result without waiting; over HTTP two calls in flight
 * could be processed in either order, so envelopes queue here and go out in order, everything
 * queued meanwhile in the next single call. A failed call is retried with backoff (uplink is
 * at-least-once and Tether's processing idempotent); an envelope Tether refuses for good (unknown
 * task, malformed) is logged and dropped so it cannot block the ones behind it.
 */
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { DeviceGatewayService } from "../../gen/tether/device/v1/gateway_service_pb.js";
import { type Uplink, UplinkSchema } from "../../gen/tether/device/v1/uplink_pb.js";
import type { UplinkBody } from "./task-executor.js";

/** Codes that no retry will change: the envelope itself is the problem. */
const PERMANENT = new Set([Code.InvalidArgument, Code.NotFound, Code.PermissionDenied, Code.FailedPrecondition]);

export class HttpUplink {
  private queue: Array<{ uplink: Uplink; done: () => void }> = [];
  private pumping: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly client: Client<typeof DeviceGatewayService>,
    private readonly log: Logger,
    private readonly maxBatch = 500,
  ) {}

  /**
   * Queues one envelope; resolves once Tether has taken it (or it was dropped as refused). With
   * `receipt`, Tether's answer also waits until the telemetry it carries is stored.
   */
  send(body: UplinkBody, opts: { receipt?: boolean } = {}): Promise<void> {
    if (this.closed) return Promise.resolve();
    const uplink = create(UplinkSchema, { messageId: randomUUID(), time: timestampNow(), receiptRequested: opts.receipt ?? false, body });
    return new Promise((done) => {
      this.queue.push({ uplink, done });
      this.pumping ??= this.pump().finally(() => (this.pumping = undefined));
    });
  }

  /** Resolves once everything queued so far is sent. */
  async flush(): Promise<void> {
    while (this.pumping) await this.pumping;
  }

  /** Stops sending; what is still queued is given up. */
  close(): void {
    this.closed = true;
    for (const q of this.queue.splice(0)) q.done();
  }

  private async pump(): Promise<void> {
    let backoff = 200;
    while (!this.closed && this.queue.length > 0) {
      const batch = this.queue.slice(0, this.maxBatch);
      try {
        await this.client.publishUplink({ uplinks: batch.map((b) => b.uplink) });
        backoff = 200;
        this.queue.splice(0, batch.length);
        for (const b of batch) b.done();
      } catch (err) {
        const e = ConnectError.from(err);
        if (PERMANENT.has(e.code)) {
          // All or nothing: find the refused envelope by sending the first one alone.
          if (batch.length > 1) {
            await this.sendHeadAlone();
            continue;
          }
          this.log.warn({ code: Code[e.code], err: e.rawMessage }, "uplink refused by Tether; dropped");
          this.queue.shift()?.done();
          continue;
        }
        this.log.debug({ code: Code[e.code], err: e.rawMessage, retryInMs: backoff }, "uplink not sent; retrying");
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 10_000);
      }
    }
  }

  private async sendHeadAlone(): Promise<void> {
    const head = this.queue[0]!;
    try {
      await this.client.publishUplink({ uplinks: [head.uplink] });
    } catch (err) {
      const e = ConnectError.from(err);
      if (!PERMANENT.has(e.code)) return; // transient: the pump retries the whole batch
      this.log.warn({ code: Code[e.code], err: e.rawMessage }, "uplink refused by Tether; dropped");
    }
    this.queue.shift();
    head.done();
  }
}
