import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { TelemetryBatch } from "../../../gen/tether/device/v1/uplink_pb.js";
import type { Clock } from "../clock.js";
import type { CoreLogger } from "../log.js";
import type { ChangeFeed, Counters } from "../ports/index.js";
import type { SampleRecord } from "./sample.js";
import { type SampleLimits, validateSamples } from "./sample-validation.js";
import type { TelemetryQueue } from "../ports/telemetry.js";

export interface IngestDeps {
  queue: TelemetryQueue;
  /** Live samples for StreamTelemetry (ephemeral metrics included). */
  feed: ChangeFeed<SampleRecord>;
  clock: Clock;
  counters: Counters;
  log: CoreLogger;
  limits: SampleLimits;
  /** Metrics streamed live but never stored (e.g. signal strength). */
  ephemeral: ReadonlySet<string>;
}

export type TelemetryIngest = ReturnType<typeof createTelemetryIngest>;

const NUMBER = /^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/;
const MAX_TRACKED_DEVICES = 100_000;

/**
 * The front of the telemetry pipeline: validates what devices send (a bad sample costs only
 * itself, with a counted reason), streams every good sample live, and enqueues the stored ones
 * for the batch writer.
 */
export function createTelemetryIngest(d: IngestDeps) {
  // Distinct metrics seen per device, to cap metric-name sprawl (bounded: oldest devices forgotten).
  // `warned`: the cap is logged once per device, not per refused message (a device stuck above it
  // would otherwise write a log line per sample).
  const metricsByDevice = new Map<string, { names: Set<string>; warned: boolean }>();
  const tracked = (deviceId: string) => {
    let entry = metricsByDevice.get(deviceId);
    if (!entry) {
      if (metricsByDevice.size >= MAX_TRACKED_DEVICES) metricsByDevice.delete(metricsByDevice.keys().next().value!);
      entry = { names: new Set(), warned: false };
      metricsByDevice.set(deviceId, entry);
    }
    return entry;
  };

  /**
   * Returns false only when the queue refused the samples (full): a transient refusal, so the
   * message is not receipted and the device's resend gets another chance. Invalid samples are a
   * final answer: they are counted and dropped, and the message counts as taken.
   */
  function ingest(deviceId: string, samples: SampleRecord[]): boolean {
    const known = tracked(deviceId);
    const { accepted, rejected } = validateSamples(samples, d.clock.now(), d.limits, known.names);
    for (const reason of rejected) d.counters.inc("tether_telemetry_samples_rejected_total", { reason });
    if (rejected.length > 0) d.log.debug({ deviceId, rejected: rejected.length, first: rejected[0] }, "telemetry samples rejected");
    if (!known.warned && rejected.includes("too_many_metrics")) {
      known.warned = true;
      d.log.warn(
        { deviceId, maxMetricsPerDevice: d.limits.maxMetricsPerDevice, known: [...known.names].slice(0, 20) },
        "device reached its distinct-metric limit; samples of new metrics are refused (logged once per device)",
      );
    }
    for (const s of accepted) d.feed.publish(s);
    const stored = accepted.filter((s) => !d.ephemeral.has(s.metric));
    d.counters.inc("tether_telemetry_samples_received_total", undefined, samples.length);
    if (stored.length > 0 && !d.queue.push(stored)) {
      d.counters.inc("tether_telemetry_samples_rejected_total", { reason: "queue_full" }, stored.length);
      d.log.warn({ deviceId, samples: stored.length, depth: d.queue.depth() }, "telemetry queue full; samples refused");
      return false;
    }
    return true;
  }

  return {
    /** A TelemetryBatch envelope; samples without a time get the arrival time. False: queue full. */
    batch(deviceId: string, batch: TelemetryBatch): boolean {
      const now = d.clock.now();
      return ingest(
        deviceId,
        batch.samples.map((s) => ({ deviceId, metric: s.metric, value: s.value, time: s.time ? timestampDate(s.time) : now, tags: s.tags })),
      );
    },
    /** The plain topic `…/metrics/{metric}` with a decimal number as payload, e.g. `23.5`. */
    plain(deviceId: string, metric: string, payload: string): boolean {
      if (!NUMBER.test(payload)) {
        d.counters.inc("tether_telemetry_samples_rejected_total", { reason: "not_a_number" });
        d.log.debug({ deviceId, metric, payload: payload.slice(0, 40) }, "plain metric is not a number");
        return true;
      }
      return ingest(deviceId, [{ deviceId, metric, value: Number(payload), time: d.clock.now(), tags: {} }]);
    },
  };
}
