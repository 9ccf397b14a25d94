import { createMemoryQueue } from "../bus/memory-queue.js";
import { createBatchWriter } from "../core/telemetry/batch-writer.js";
import { createTelemetryIngest } from "../core/telemetry/ingest.js";
import { maintainTelemetry } from "../core/telemetry/retention.js";
import { createTelemetryService } from "../core/telemetry/telemetry-service.js";
import type { Infrastructure } from "./infrastructure.js";

/**
 * Telemetry: intake checks, the in-memory queue, the batch writer and the read API. Started
 * before the device link, so the writer stops after the link and the uplink intake close: it
 * drains every sample that arrived.
 */
export async function startTelemetry(x: Infrastructure) {
  const { config, clock, counters, coreLog } = x;
  const telemetryStore = x.stores.telemetry;
  const telemetryQueue = createMemoryQueue(config.telemetry.queueCapacity);
  const ingest = createTelemetryIngest({
    queue: telemetryQueue,
    feed: x.feeds.sampleFeed,
    clock,
    counters,
    log: coreLog,
    ephemeral: new Set(config.telemetry.ephemeral),
    limits: {
      maxAgeMs: config.telemetry.maxAgeSeconds * 1000,
      maxFutureMs: config.telemetry.maxFutureSeconds * 1000,
      maxBatch: 10_000,
      maxMetricsPerDevice: config.telemetry.maxMetricsPerDevice,
      maxTags: 16,
    },
  });
  // Several inserts in flight pay off on PostgreSQL; PGlite runs one statement at a time anyway,
  // on the main thread, so there small batches wait 10 ms for company (see lingerMs).
  const writer = createBatchWriter({
    queue: telemetryQueue,
    store: telemetryStore,
    counters,
    log: coreLog,
    writers: x.db.embedded ? 1 : 3,
    ...(x.db.embedded && { lingerMs: 10, minBatch: 1000 }),
  });
  const telemetry = createTelemetryService({ store: telemetryStore, devices: x.stores.devices, feed: x.feeds.sampleFeed, clock });
  const retention = { raw: config.telemetry.retentionDays, "1m": config.telemetry.minuteRetentionDays, "1h": config.telemetry.hourRetentionDays };
  const maintain = () => maintainTelemetry(telemetryStore, clock, retention, coreLog);
  await maintain();
  writer.start();
  // Bounded generously: the writer drains the queue into the database before it returns.
  x.life.add({ name: "telemetry writer", stop: () => writer.stop(), timeoutMs: 60_000 });
  // A receipt goes out once the telemetry queued before it is stored in this replica: the
  // replica that processed the message is the one whose writer holds its samples.
  const telemetryStored = () => telemetryQueue.committed();
  return { telemetryQueue, ingest, writer, telemetry, maintain, telemetryStored };
}

export type Telemetry = Awaited<ReturnType<typeof startTelemetry>>;
