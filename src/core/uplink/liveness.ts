import type { UplinkDeps } from "./uplink-deps.js";

// last_seen_time is written at most once a second per device: a device streaming telemetry must
// not cost one UPDATE per message (measured: it halved single-sample ingestion).
const TOUCH_EVERY_MS = 1000;
const MAX_TRACKED = 100_000;

/**
 * Marks a device as seen. Best effort: a failed write (database away) is only logged. The message
 * is handled either way, and throwing here would hold back the receipt of telemetry already queued
 * for storage, so the device would resend it only after its timeout.
 */
export function createLiveness(d: Pick<UplinkDeps, "devices" | "clock" | "log">): (deviceId: string) => Promise<void> {
  const touched = new Map<string, number>();
  async function touchNow(deviceId: string): Promise<void> {
    const now = d.clock.now();
    if (now.getTime() - (touched.get(deviceId) ?? 0) < TOUCH_EVERY_MS) return;
    if (touched.size >= MAX_TRACKED) touched.clear();
    touched.set(deviceId, now.getTime());
    await d.devices.touch(deviceId, now);
  }
  return (deviceId) => touchNow(deviceId).catch((err: unknown) => d.log.debug({ err, deviceId }, "last_seen_time not written"));
}
