import { NotFoundError } from "../errors.js";
import type { DeviceRepository } from "../ports/device-repository.js";
import { type Access, authorize } from "./access.js";
import { deviceGate } from "./device-gate.js";
import { metaOf } from "./device-meta.js";
import type { Action } from "./roles.js";
import type { DeviceMeta } from "./selector.js";

export type DeviceRights = ReturnType<typeof createDeviceRights>;

/**
 * Rights checks for anything that lives under a device (tasks, telemetry, rules, jobs): the one
 * helper a service needs to enforce `Access` by device id. Admins and services skip the lookup.
 */
export function createDeviceRights(devices: Pick<DeviceRepository, "get">) {
  const lookup = async (id: string): Promise<DeviceMeta | undefined> => {
    const stored = await devices.get(id);
    return stored ? metaOf(stored.device) : undefined;
  };
  return {
    lookup,
    /**
     * Refuses `action` on the device unless allowed: NOT_FOUND naming `resource` (default the
     * device) when missing or invisible to the caller, PERMISSION_DENIED when the role is short.
     */
    async require(access: Access, action: Action, deviceId: string, resource = `devices/${deviceId}`): Promise<void> {
      if (access.all) return;
      const meta = await lookup(deviceId);
      if (!meta) throw new NotFoundError(resource);
      authorize(access, action, meta, resource);
    },
    /** A per-stream filter: may the caller, as of now, see items of this device? */
    gate(access: Access): (deviceId: string) => Promise<boolean> {
      return deviceGate(access, lookup);
    },
  };
}
