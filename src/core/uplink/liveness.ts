import type { UplinkDeps } from "./uplink-deps.js";

// last_seen_time is written at most once a second per device for its own messages: a device
// streaming telemetry must not cost one UPDATE per message (measured: it halved single-sample
// ingestion). Heartbeats and keepalives only say "still here", so once per liveness interval.
const TOUCH_EVERY_MS = 1000;
const MAX_TRACKED = 100_000;

/** Marks devices as seen; `alive` for heartbeats and keepalives, `spoke` for the device's own messages. */
export interface Liveness {
  spoke(deviceId: string): Promise<void>;
  alive(deviceId: string): Promise<void>;
}

/**
 * Marks a device as seen. Best effort: a failed write (database away) is only logged. The message
 * is handled either way, and throwing here would hold back the receipt of telemetry already queued
 * for storage, so the device would resend it only after its timeout. A device that was silent and
 * speaks again is news on the device feed.
 */
export function createLiveness(d: Pick<UplinkDeps, "devices" | "deviceFeed" | "clock" | "log" | "livenessIntervalMs">): Liveness {
  const spokeAt = new Map<string, number>();
  const aliveAt = new Map<string, number>();
  const intervalMs = d.livenessIntervalMs ?? 60_000;
  async function touch(deviceId: string, uplink: boolean): Promise<void> {
    const now = d.clock.now();
    const last = uplink ? spokeAt : aliveAt;
    const every = uplink ? TOUCH_EVERY_MS : intervalMs;
    // A message of its own also counts as alive: no heartbeat write right after it.
    if (now.getTime() - Math.max(last.get(deviceId) ?? 0, uplink ? 0 : (spokeAt.get(deviceId) ?? 0)) < every) return;
    for (const m of uplink ? [spokeAt, aliveAt] : [aliveAt]) {
      if (m.size >= MAX_TRACKED) m.clear();
      m.set(deviceId, now.getTime());
    }
    const wasSilent = await d.devices.touch(deviceId, now, { uplink });
    if (!wasSilent) return;
    const stored = await d.devices.get(deviceId);
    if (stored) d.deviceFeed.publish(stored.device);
  }
  const safe = (deviceId: string, uplink: boolean) =>
    touch(deviceId, uplink).catch((err: unknown) => d.log.debug({ err, deviceId }, "last_seen_time not written"));
  return { spoke: (id) => safe(id, true), alive: (id) => safe(id, false) };
}
