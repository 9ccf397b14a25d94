import type { Clock } from "../clock.js";
import type { CoreLogger } from "../log.js";
import type { TelemetryRepository } from "../ports/telemetry.js";

const DAY = 86_400_000;

/**
 * Keeps partitions ahead of time (so the writer rarely creates one on the hot path) and drops the
 * ones entirely older than the retention. Idempotent; every replica may run it.
 */
export async function maintainTelemetry(store: TelemetryRepository, clock: Clock, retentionDays: number, log: CoreLogger): Promise<string[]> {
  const now = clock.now().getTime();
  await store.ensurePartitions(new Date(now - DAY), new Date(now + 3 * DAY));
  const dropped = await store.dropPartitionsBefore(new Date(now - retentionDays * DAY));
  if (dropped.length > 0) log.info({ dropped }, "telemetry partitions dropped by retention");
  return dropped;
}
