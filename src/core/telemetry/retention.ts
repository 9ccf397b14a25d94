import type { Clock } from "../clock.js";
import type { CoreLogger } from "../log.js";
import type { TelemetryRepository, TelemetryTier } from "../ports/telemetry.js";

const DAY = 86_400_000;

/** How long each tier is kept, days: raw samples, 1-minute and 1-hour rollups. */
export type TelemetryRetention = Record<TelemetryTier, number>;

/**
 * Keeps partitions ahead of time (so the writer rarely creates one on the hot path) and, per tier,
 * drops the partitions entirely older than that tier's retention. Idempotent; every replica may run it.
 * A number instead of the tiers is the raw retention alone (rollups kept forever), as before rollups.
 */
export async function maintainTelemetry(store: TelemetryRepository, clock: Clock, retention: TelemetryRetention | number, log: CoreLogger): Promise<string[]> {
  const now = clock.now().getTime();
  await store.ensurePartitions(new Date(now - DAY), new Date(now + 3 * DAY));
  // A coarser tier is never dropped before a finer one: queries read the rollups wherever the
  // bucket allows, so minute rollups shorter-lived than the raw samples would hide stored data.
  if (typeof retention !== "number") {
    const minute = Math.max(retention["1m"], retention.raw);
    retention = { raw: retention.raw, "1m": minute, "1h": Math.max(retention["1h"], minute) };
  }
  const tiers: Array<[TelemetryTier, number]> =
    typeof retention === "number" ? [["raw", retention]] : (Object.entries(retention) as Array<[TelemetryTier, number]>);
  const dropped: string[] = [];
  for (const [tier, days] of tiers) {
    const names = await store.dropPartitionsBefore(new Date(now - days * DAY), tier);
    if (names.length > 0) log.info({ tier, dropped: names }, "telemetry partitions dropped by retention");
    dropped.push(...names);
  }
  return dropped;
}
