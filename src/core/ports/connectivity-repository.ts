import type { ConnectivityRecord } from "../connectivity/connectivity-reason.js";

/**
 * Connectivity events as stored (`src/store/connectivity-store.ts`). They are written by the
 * device repository's presence statements (the event and the device row change together); this
 * port reads them and ages them out.
 */
export interface ConnectivityRepository {
  /** A device's events with id < `beforeId` (all if unset), newest first, at most `limit`. */
  list(deviceId: string, query: { beforeId?: string; limit: number }): Promise<ConnectivityRecord[]>;
  /** Deletes the events recorded before `cutoff`; returns how many. */
  deleteBefore(cutoff: Date): Promise<number>;
}
