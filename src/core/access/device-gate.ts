import type { Access } from "./access.js";
import type { DeviceMeta } from "./selector.js";

/** How long a stream trusts a device's labels and owner before reading them again, ms. */
export const META_TTL_MS = 5000;

/**
 * For watch streams: decides per item whether the caller may see it, with the caller's rights
 * as of now (so an unshare stops items at once) and each device's labels/owner cached briefly
 * (a relabel that moves a device out of a shared selector applies within META_TTL_MS).
 */
export function deviceGate(access: Access, lookup: (id: string) => Promise<DeviceMeta | undefined>, now: () => number = Date.now) {
  const metas = new Map<string, { at: number; meta: DeviceMeta | undefined }>();
  return async (deviceId: string): Promise<boolean> => {
    if (access.all) return true;
    const current = await access.current();
    if (current.all) return true;
    let hit = metas.get(deviceId);
    if (!hit || now() - hit.at > META_TTL_MS) {
      hit = { at: now(), meta: await lookup(deviceId) };
      metas.set(deviceId, hit);
      if (metas.size > 10_000) metas.clear();
    }
    return hit.meta !== undefined && current.roleOn(hit.meta) !== undefined;
  };
}
