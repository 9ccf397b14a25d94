import type { Device } from "../../../gen/tether/v1/device_pb.js";
import type { DeviceFilter } from "./device-filter.js";

/** A device as stored, with the revision its etag is derived from. */
export interface StoredDevice {
  device: Device;
  revision: number;
}

/**
 * The port through which the core persists devices. The PostgreSQL adapter lives in
 * `src/store/device-store.ts` (and serves PGlite too).
 */
export interface DeviceRepository {
  /** Inserts a new device; throws AlreadyExistsError if the id is taken. Returns it as stored. */
  insert(device: Device, now: Date): Promise<StoredDevice>;
  get(id: string): Promise<StoredDevice | undefined>;
  /** Devices matching `filter` with id > `afterId`, in id order, at most `limit`. */
  list(query: { filter: DeviceFilter; afterId?: string; limit: number }): Promise<Device[]>;
  /**
   * Replaces the mutable fields if the stored revision is still `expectedRevision`; returns
   * undefined if it changed or the device is gone (the caller re-reads to tell which).
   */
  update(device: Device, expectedRevision: number, opts: { desiredChanged: boolean; now: Date }): Promise<StoredDevice | undefined>;
  /** Deletes; with `expectedRevision`, only if unchanged. Returns whether a row was deleted. */
  delete(id: string, expectedRevision?: number): Promise<boolean>;
}
