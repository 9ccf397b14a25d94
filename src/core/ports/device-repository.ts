import type { Device } from "../../../gen/tether/v1/device_pb.js";
import type { DeviceScope } from "../access/access.js";
import type { DeviceFilter } from "../devices/device-filter.js";
import type { DisconnectReason, PresenceChange } from "../connectivity/connectivity-reason.js";

/** A device as stored, with the revision its etag is derived from. */
export interface StoredDevice {
  device: Device;
  revision: number;
  /** Increases with every change of the desired state; sent to the device with it. */
  desiredVersion: number;
  /** The version of the last reported state applied. */
  reportedVersion: number;
}

/** A committed deletion: the certificates it revoked. */
export interface DeletedDevice {
  revoked: Array<{ serialNumber: string; revokeTime: Date; reason: number }>;
}

/** When a device id was last deleted. */
export interface DeviceDeletion {
  deviceId: string;
  deleteTime: Date;
}

/**
 * The port through which the core persists devices. The PostgreSQL adapter lives in
 * `src/store/device-store.ts` (and serves PGlite too).
 */
export interface DeviceRepository {
  /** Inserts a new device; throws AlreadyExistsError if the id is taken. Returns it as stored. */
  insert(device: Device, now: Date): Promise<StoredDevice>;
  get(id: string): Promise<StoredDevice | undefined>;
  /** Devices matching `filter` and within `scope` (all if omitted) with id > `afterId`, in id order, at most `limit`. */
  list(query: { filter: DeviceFilter; scope?: DeviceScope; afterId?: string; limit: number }): Promise<Device[]>;
  /**
   * How many devices match `filter` within `scope`, and per value of `groupBy` the `limit` largest
   * groups (in no particular order). `value` is undefined for devices without the label.
   */
  count(query: { filter: DeviceFilter; scope?: DeviceScope; groupBy?: DeviceGroupBy; limit: number }): Promise<{
    total: number;
    groups: Array<{ value: string | undefined; count: number }>;
  }>;
  /**
   * Replaces the mutable fields if the stored revision is still `expectedRevision`; returns
   * undefined if it changed or the device is gone (the caller re-reads to tell which).
   */
  update(device: Device, expectedRevision: number, opts: { desiredChanged: boolean; now: Date }): Promise<StoredDevice | undefined>;
  /**
   * Deletes; with `expectedRevision`, only if unchanged. In the same transaction the device's
   * shares go, the deletion is recorded (see {@link DeviceRepository.deletions}) and every
   * certificate still active for this id is revoked with `revocationReason`. Returns what was
   * revoked, or undefined if no row was deleted.
   */
  delete(id: string, opts: { expectedRevision?: number; now: Date; revocationReason: number }): Promise<DeletedDevice | undefined>;
  /** The latest deletion time of every device id ever deleted (offline-signed certificates of an earlier incarnation are refused). */
  deletions(): Promise<DeviceDeletion[]>;
  /**
   * Records a connect or disconnect. When it changes `online`, a connectivity event is recorded
   * in the same statement (a presence heard again is none). `uplink`: the device itself spoke (a
   * Hello), which also moves `last_uplink_time`. Returns the device as stored now and whether
   * `online` changed, or undefined for an unknown device.
   */
  setPresence(id: string, change: PresenceChange, now: Date, opts?: { uplink?: boolean }): Promise<(StoredDevice & { changed: boolean }) | undefined>;
  /**
   * Stores the firmware version a device reported, if it differs from the stored one. The
   * revision moves too (a visible field changed: an UpdateDevice that read the old version must
   * not write it back); `update_time` does not, it is the API's. Returns the device if it changed.
   */
  setFirmwareVersion(id: string, firmwareVersion: string): Promise<StoredDevice | undefined>;
  /**
   * Marks every online device offline with `reason` (the broker became unreachable, the embedded
   * broker stopped), recording an event for each; returns them as changed.
   */
  setAllOffline(now: Date, reason: DisconnectReason): Promise<Device[]>;
  /**
   * Records that the device was heard from: `last_seen_time`, and with `uplink` (a message of its
   * own, not a heartbeat or keepalive) `last_uplink_time`, which also ends its silence. Returns
   * true when it was silent until now (its change is news).
   */
  touch(id: string, now: Date, opts?: { uplink?: boolean }): Promise<boolean>;
  /**
   * Marks online devices that have sent nothing of their own since `cutoff` (nor connected since)
   * as silent; returns the ones that became silent.
   */
  markSilent(cutoff: Date): Promise<Device[]>;
  /**
   * Records an open HTTP long poll: the device listens until `until` (and was seen `now`).
   * Returns false for an unknown device.
   */
  setListening(id: string, until: Date, now: Date): Promise<boolean>;
  /** Ends the long poll that set `until` (a newer poll of the same device is left alone). */
  clearListening(id: string, until: Date): Promise<void>;
  /**
   * Stores a reported state (protobuf JSON of the product's reported message) if `version` is
   * newer than the stored one. Returns the updated device, or why nothing changed.
   */
  applyReported(id: string, version: number, reported: unknown, now: Date): Promise<StoredDevice | "stale" | "unknown">;
  /**
   * Many devices' reported states in one statement (group commit): each stored if the device
   * exists, is of `kindName` and `version` is newer. Undefined where nothing changed (the caller
   * finds out why the slow way, which is rare).
   */
  applyReportedMany(items: readonly ReportedItem[], now: Date): Promise<(StoredDevice | undefined)[]>;
  /** Several devices at once, in the order asked (undefined for one that does not exist). */
  getMany(ids: readonly string[]): Promise<(StoredDevice | undefined)[]>;
}

/** One reported state for `applyReportedMany`. */
export interface ReportedItem {
  id: string;
  /** The product the device must be (`Product.kindName`): a device cannot report itself as another. */
  kindName: string;
  version: number;
  /** Protobuf JSON of the product's reported message. */
  reported: unknown;
}

/** What CountDevices groups by: a column, or one label's value. */
export type DeviceGroupBy = { field: "firmware_version" | "kind" | "online" } | { field: "label"; key: string };
