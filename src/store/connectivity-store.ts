import type { ConnectivityRepository } from "../core/ports/connectivity-repository.js";
import type { Sql } from "./database.js";

interface EventRow {
  id: string | number;
  device_id: string;
  event_time: Date;
  connected: boolean;
  reason: string;
  remote_address: string;
}

/** ConnectivityRepository on PostgreSQL (or PGlite). Events are written by the device store's presence statements. */
export function createConnectivityStore(sql: Sql): ConnectivityRepository {
  return {
    async list(deviceId, { beforeId, limit }) {
      const rows = await sql<EventRow[]>`
        SELECT * FROM connectivity_events
        WHERE device_id = ${deviceId} ${beforeId !== undefined ? sql`AND id < ${beforeId}` : sql``}
        ORDER BY id DESC
        LIMIT ${limit}`;
      return rows.map((r) => ({
        id: String(r.id),
        deviceId: r.device_id,
        connected: r.connected,
        reason: r.reason,
        remoteAddress: r.remote_address,
        time: r.event_time,
      }));
    },

    async deleteBefore(cutoff) {
      const rows = await sql`DELETE FROM connectivity_events WHERE event_time < ${cutoff}`;
      return rows.count;
    },
  };
}
