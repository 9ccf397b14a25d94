import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { randomUUID } from "node:crypto";
import { DownlinkSchema } from "../../../gen/tether/device/v1/downlink_pb.js";
import { DEVICE_BOUNDS } from "../../protocol/device-bounds.js";
import type { Clock } from "../clock.js";
import { utf8Length } from "../device-bounds.js";
import type { CoreLogger } from "../log.js";
import type { Counters, DeviceLink } from "../ports/index.js";

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

/** The contract's bounds of UplinkReceipt.message_ids: most ids in one receipt (about 38 bytes each), bytes per id. */
const RECEIPT_IDS = DEVICE_BOUNDS["tether.device.v1.UplinkReceipt.message_ids"]!;
const MAX_IDS = RECEIPT_IDS.maxItems!;

/** A device's ids gathering for one receipt round, and the fewest ids any of those messages can take. */
interface Gathering {
  ids: string[];
  max: number;
}

/**
 * End-to-end receipts for uplink sent with `receipt_requested`. The processor calls `done` once a
 * message is handled; its id waits here until the telemetry queued before it is in the database,
 * then goes to the device in an UplinkReceipt, coalesced per device over `lingerMs`. A receipt
 * that fails to go out is only counted: the device resends the message and gets a new one.
 */
export function createUplinkReceipts(d: UplinkReceiptsDeps) {
  const lingerMs = d.lingerMs ?? 10;
  let gathering = new Map<string, Gathering>();
  let timer: NodeJS.Timeout | undefined;
  const inFlight = new Set<Promise<void>>();

  async function deliver(batch: Map<string, Gathering>): Promise<void> {
    await d.stored();
    const now = timestampFromDate(d.clock.now());
    const sends: Promise<void>[] = [];
    for (const [deviceId, { ids, max }] of batch) {
      for (let i = 0; i < ids.length; i += max) {
        const messageIds = ids.slice(i, i + max);
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
    /**
     * The message is handled: receipt it once what it enqueued for storage is stored. `maxIds` is
     * the message's `max_receipt_ids` (0: the contract's 500): the receipt that carries this id
     * carries at most that many, so it fits the device's buffer.
     */
    done(deviceId: string, messageId: string, maxIds = 0): void {
      // Nothing the device could match the receipt to, or an id no receipt may carry.
      if (!messageId || utf8Length(messageId) > RECEIPT_IDS.maxBytes!) return;
      const max = maxIds > 0 ? Math.min(maxIds, MAX_IDS) : MAX_IDS;
      let g = gathering.get(deviceId);
      if (!g) gathering.set(deviceId, (g = { ids: [], max }));
      g.ids.push(messageId);
      g.max = Math.min(g.max, max);
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
