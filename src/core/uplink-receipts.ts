import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { randomUUID } from "node:crypto";
import { DownlinkSchema } from "../../gen/tether/device/v1/downlink_pb.js";
import type { Clock } from "./clock.js";
import type { CoreLogger } from "./log.js";
import type { Counters, DeviceLink } from "./ports.js";

export interface UplinkReceiptsDeps {
  link: Pick<DeviceLink, "send">;
  /** Resolves once every sample enqueued for storage before the call is stored. */
  stored(): Promise<void>;
  clock: Clock;
  counters: Counters;
  log: CoreLogger;
  /** How long ids gather before they go out in one receipt, ms. @default 10 */
  lingerMs?: number;
}

export type UplinkReceipts = ReturnType<typeof createUplinkReceipts>;

/** Most ids in one UplinkReceipt (about 40 bytes each). */
const MAX_IDS = 500;

/**
 * End-to-end receipts for uplink sent with `receipt_requested`. The processor calls `done` once a
 * message is handled; its id waits here until the telemetry queued before it is in the database,
 * then goes to the device in an UplinkReceipt, coalesced per device over `lingerMs`. A receipt
 * that fails to go out is only counted: the device resends the message and gets a new one.
 */
export function createUplinkReceipts(d: UplinkReceiptsDeps) {
  const lingerMs = d.lingerMs ?? 10;
  let gathering = new Map<string, string[]>();
  let timer: NodeJS.Timeout | undefined;
  const inFlight = new Set<Promise<void>>();

  async function deliver(batch: Map<string, string[]>): Promise<void> {
    await d.stored();
    const now = timestampFromDate(d.clock.now());
    const sends: Promise<void>[] = [];
    for (const [deviceId, ids] of batch) {
      for (let i = 0; i < ids.length; i += MAX_IDS) {
        const messageIds = ids.slice(i, i + MAX_IDS);
        const message = create(DownlinkSchema, { messageId: randomUUID(), sendTime: now, body: { case: "receipt", value: { messageIds } } });
        sends.push(
          d.link.send(deviceId, message).then(
            () => d.counters.inc("tether_uplink_receipts_total", { result: "sent" }, messageIds.length),
            (err: unknown) => {
              d.counters.inc("tether_uplink_receipts_total", { result: "failed" }, messageIds.length);
              d.log.debug({ err, deviceId, ids: messageIds.length }, "uplink receipt not sent; the device will resend");
            },
          ),
        );
      }
    }
    await Promise.all(sends);
  }

  function flush(): void {
    timer = undefined;
    if (gathering.size === 0) return;
    const batch = gathering;
    gathering = new Map();
    const p = deliver(batch).catch((err: unknown) => d.log.warn({ err }, "uplink receipts failed"));
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  }

  return {
    /** The message is handled: receipt it once what it enqueued for storage is stored. */
    done(deviceId: string, messageId: string): void {
      if (!messageId) return; // nothing the device could match the receipt to
      let ids = gathering.get(deviceId);
      if (!ids) gathering.set(deviceId, (ids = []));
      ids.push(messageId);
      timer ??= setTimeout(flush, lingerMs);
    },
    /** Sends what is gathered and waits for every receipt under way (shutdown, tests). */
    async drain(): Promise<void> {
      clearTimeout(timer);
      flush();
      await Promise.all([...inFlight]);
    },
  };
}
