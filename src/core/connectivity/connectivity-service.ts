import { create } from "@bufbuild/protobuf";
import type { Device } from "../../../gen/tether/v1/device_pb.js";
import {
  type ListConnectivityEventsRequest,
  type ListConnectivityEventsResponse,
  ListConnectivityEventsResponseSchema,
} from "../../../gen/tether/v1/device_service_pb.js";
import { type Access, authorize } from "../access/access.js";
import { metaOf } from "../access/device-meta.js";
import type { Clock } from "../clock.js";
import { deviceName, parseDeviceName } from "../devices/device-name.js";
import { NotFoundError } from "../errors.js";
import type { CoreLogger } from "../log.js";
import { decodePageToken, encodePageToken, resolvePageSize } from "../page-token.js";
import type { ChangeFeed, ConnectivityRepository, DeviceRepository } from "../ports/index.js";
import { type DisconnectReason, toConnectivityEvent } from "./connectivity-reason.js";

export interface ConnectivityServiceDeps {
  devices: Pick<DeviceRepository, "get" | "markSilent" | "setAllOffline">;
  events: ConnectivityRepository;
  /** Device changes (WatchDevices, event rules): a device turning silent is one. */
  deviceFeed: ChangeFeed<Device>;
  clock: Clock;
  log: CoreLogger;
  /** An online device with nothing of its own for this long is silent (`TETHER_SILENT_AFTER_S`), ms. */
  silentAfterMs: number;
  /** Events older than this are deleted (`TETHER_CONNECTIVITY_RETENTION_DAYS`), ms. */
  retentionMs: number;
}

export type ConnectivityService = ReturnType<typeof createConnectivityService>;

/**
 * Presence as a resource: a device's connectivity history (ListConnectivityEvents, with GetDevice's
 * rights), the sweep that tells "connected but silent" from "disconnected", retention, and the
 * disconnects Tether itself causes (its embedded broker stopping).
 */
export function createConnectivityService(d: ConnectivityServiceDeps) {
  const publishAll = (changed: Device[]) => {
    for (const device of changed) d.deviceFeed.publish(device);
    return changed.length;
  };
  return {
    async listConnectivityEvents(access: Access, req: ListConnectivityEventsRequest): Promise<ListConnectivityEventsResponse> {
      const id = parseDeviceName(req.parent, "parent");
      const limit = resolvePageSize(req.pageSize);
      const query = `connectivity|${req.parent}`;
      const beforeId = decodePageToken(req.pageToken, query);
      const stored = await d.devices.get(id);
      if (!stored) throw new NotFoundError(deviceName(id));
      authorize(access, "device.read", metaOf(stored.device));
      const rows = await d.events.list(id, { beforeId, limit: limit + 1 });
      const page = rows.slice(0, limit);
      const nextPageToken = rows.length > limit ? encodePageToken(page.at(-1)!.id, query) : "";
      return create(ListConnectivityEventsResponseSchema, { connectivityEvents: page.map(toConnectivityEvent), nextPageToken });
    },

    /** Marks the devices silent for `silentAfterMs` and announces them; returns how many. Safe on every replica at once. */
    async sweepSilence(): Promise<number> {
      return publishAll(await d.devices.markSilent(new Date(d.clock.now().getTime() - d.silentAfterMs)));
    },

    /** Deletes events past retention; returns how many. */
    async expire(): Promise<number> {
      return d.events.deleteBefore(new Date(d.clock.now().getTime() - d.retentionMs));
    },

    /**
     * Every online device goes offline with `reason`: the embedded broker stops with Tether (a
     * graceful stop), or was found stopped at a start (a crash left devices online that no broker
     * holds any more). Only for the embedded broker, which has one Tether.
     */
    async allOffline(reason: DisconnectReason): Promise<number> {
      const n = publishAll(await d.devices.setAllOffline(d.clock.now(), reason));
      if (n > 0) d.log.info({ devices: n, reason }, "devices marked offline");
      return n;
    },
  };
}
