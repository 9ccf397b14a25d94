import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type Device, DeviceSchema } from "../../../gen/tether/v1/device_pb.js";
import { type WatchDevicesResponse, WatchDevicesResponse_Type as Type, WatchDevicesResponseSchema } from "../../../gen/tether/v1/device_service_pb.js";
import type { Access } from "../access/access.js";
import { metaOf } from "../access/device-meta.js";
import { createDeviceRights } from "../access/device-rights.js";
import type { ChangeFeed } from "../ports/index.js";
import { productByCase } from "../products/index.js";
import { watchFeed } from "../watch-feed.js";
import { type DeviceFilter, matchesFilter, parseDeviceFilter, subjectOf } from "./device-filter.js";
import { parseDeviceName } from "./device-name.js";
import type { DeviceRepository } from "../ports/device-repository.js";

/** Most devices sent as the initial snapshot; a bigger fleet needs a filter. */
export const WATCH_INITIAL_MAX = 10_000;
/** Devices read per query while sending the initial snapshot. */
const INITIAL_PAGE = 500;

export interface DeviceWatchDeps {
  devices: Pick<DeviceRepository, "get" | "list">;
  /** Every committed device change: API writes, presence, reported and desired state, deletions. */
  feed: ChangeFeed<Device>;
}

/** A feed item, or the end of the initial snapshot. */
type Item = { device: Device; initial: boolean } | { device: undefined; initial: true };

/**
 * The copy of a deleted device published on the feed: what rights and filters need (name, owner,
 * labels, kind) and `delete_time`, without its state (nothing reported is observed twice).
 */
export function deletedDevice(d: Device, now: Date): Device {
  const kind = d.kind.case ? ({ case: d.kind.case, value: create(productByCase(d.kind.case).schema) } as Device["kind"]) : { case: undefined };
  return create(DeviceSchema, {
    name: d.name,
    uid: d.uid,
    owner: d.owner,
    labels: d.labels,
    displayName: d.displayName,
    kind,
    deleteTime: timestampFromDate(now),
  });
}

/** Whether a device matches a ListDevices filter: every field, presence and state included. */
function matches(f: DeviceFilter, d: Device): boolean {
  return matchesFilter(f, subjectOf(d));
}

/**
 * WatchDevices: the caller's matching devices (paged out of the store, at most
 * WATCH_INITIAL_MAX), a marker, then every change from the device feed. Rights are checked per
 * change as WatchTasks does (`rights.gate`, the caller's rights as of sending); a deletion is
 * checked against the deleted copy's owner and labels, since the store no longer has them.
 */
export function createDeviceWatch({ devices, feed }: DeviceWatchDeps) {
  const rights = createDeviceRights(devices);
  return {
    async *watchDevices(access: Access, filterText: string, signal: AbortSignal): AsyncGenerator<WatchDevicesResponse> {
      const filter = parseDeviceFilter(filterText);
      /** Devices this watcher was sent and has not been told are gone: their leaving is news. */
      const sent = new Set<string>();
      const items: ChangeFeed<Item> = {
        publish: () => {
          throw new Error("read-only view");
        },
        subscribe: (fn) => feed.subscribe((device) => fn({ device, initial: false })),
      };
      const initial = async (): Promise<Item[]> => {
        const out: Item[] = [];
        let afterId: string | undefined;
        while (out.length < WATCH_INITIAL_MAX) {
          const page = await devices.list({ filter, scope: access.scope(), afterId, limit: Math.min(INITIAL_PAGE, WATCH_INITIAL_MAX - out.length) });
          for (const device of page) out.push({ device, initial: true });
          if (page.length < INITIAL_PAGE) break;
          afterId = parseDeviceName(page.at(-1)!.name);
        }
        out.push({ device: undefined, initial: true });
        return out;
      };
      const gate = rights.gate(access);
      const allow = access.all
        ? undefined
        : async (it: Item): Promise<boolean> => {
            // The snapshot was scoped in the query just now.
            if (it.initial || !it.device) return true;
            if (it.device.deleteTime) return (await access.current()).roleOn(metaOf(it.device)) !== undefined;
            return gate(parseDeviceName(it.device.name));
          };
      const match = (it: Item) => !it.device || matches(filter, it.device) || sent.has(it.device.name);
      for await (const it of watchFeed(items, match, initial, signal, undefined, allow)) {
        const d = it.device;
        if (!d) {
          yield create(WatchDevicesResponseSchema, { type: Type.INITIAL_COMPLETE });
        } else if (d.deleteTime) {
          sent.delete(d.name);
          yield create(WatchDevicesResponseSchema, { type: Type.DELETED, device: d });
        } else if (matches(filter, d)) {
          sent.add(d.name);
          yield create(WatchDevicesResponseSchema, { type: it.initial ? Type.INITIAL : Type.CHANGED, device: d });
        } else if (sent.delete(d.name)) {
          yield create(WatchDevicesResponseSchema, { type: Type.REMOVED, device: d });
        }
      }
    },
  };
}
