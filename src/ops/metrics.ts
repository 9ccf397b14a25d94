import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { CounterEntry } from "../core/counters.js";
import type { UplinkIntake } from "../core/ports/uplink-intake.js";
import { withTimeout } from "../core/timeout.js";

/** A scrape waits at most this long for a database-backed gauge, then shows its last value. */
const SOURCE_TIMEOUT_MS = 2000;

/** Descriptions of the counters the core increments (`counters.inc`), for the HELP lines. */
const COUNTER_HELP: Record<string, string> = {
  tether_uplink_received_total: "Uplink envelopes decoded, by body kind.",
  tether_uplink_dropped_total: "Uplink messages the bridge dropped, by reason (malformed, oversized, bad_topic, ...).",
  tether_mqtt_refused_total: "Connections, publishes, subscriptions, retained messages and oversized packets the embedded broker refused, by action.",
  tether_api_streams_refused_total: "Streaming calls refused with RESOURCE_EXHAUSTED because the principal had too many open, by principal kind.",
  tether_task_late_events_total: "Task events that arrived after the task ended (recorded, no effect).",
  tether_reported_state_stale_total: "Reported states older than the stored version (ignored).",
  tether_telemetry_samples_received_total: "Telemetry samples received.",
  tether_telemetry_samples_rejected_total: "Telemetry samples refused, by reason.",
  tether_telemetry_samples_stored_total: "Telemetry samples written to the database.",
  tether_telemetry_samples_duplicate_total: "Redelivered telemetry samples already stored.",
  tether_telemetry_write_failures_total: "Failed telemetry batch writes (retried).",
};

/** What the gauges read on each scrape. Every source is optional; a failing source keeps its last value. */
export interface MetricSources {
  counters: () => CounterEntry[];
  /** Open and finished tasks by state (a GROUP BY; cached by the caller). */
  tasksByState?: () => Promise<Record<string, number>>;
  devicesOnline?: () => Promise<number>;
  /** Uplink items taken from the broker and not yet processed or handed off. */
  uplinkQueueDepth?: () => number;
  telemetryQueueDepth?: () => number;
  /** Streaming API calls open now (watches, telemetry streams). */
  openStreams?: () => number;
  /** Dependency name → up. */
  dependencies?: () => Record<string, boolean>;
}

export interface Metrics {
  registry: Registry;
  /** Records one finished RPC. `code` is the gRPC code name (`ok`, `not_found`, ...). */
  observeRpc(service: string, method: string, code: string, seconds: number): void;
  rpcStarted(): () => void;
  /** The Prometheus text exposition. */
  scrape(): Promise<string>;
}

/**
 * The Prometheus registry of one Tether process (not prom-client's global one, so several apps in
 * one test process do not collide): process metrics, RPC rates and latencies, the core's counters,
 * and gauges read on scrape (tasks by state, devices online, queue depths, dependency health).
 */
export function createMetrics(src: MetricSources): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "tether_" });
  const rpc = new Histogram({
    name: "tether_rpc_duration_seconds",
    help: "API calls by service, method and gRPC code: duration until the response (unary) or the end of the stream.",
    labelNames: ["service", "method", "code"],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const inFlight = new Gauge({ name: "tether_rpc_in_flight", help: "API calls in progress (streams included).", registers: [registry] });
  const lastTasks = new Map<string, number>();
  new Gauge({
    name: "tether_tasks",
    help: "Tasks in the database by state.",
    labelNames: ["state"],
    registers: [registry],
    async collect() {
      if (!src.tasksByState) return;
      const counts = await withTimeout(src.tasksByState(), SOURCE_TIMEOUT_MS).catch(() => undefined);
      if (counts) {
        for (const k of lastTasks.keys()) if (!(k in counts)) lastTasks.set(k, 0);
        for (const [k, v] of Object.entries(counts)) lastTasks.set(k, v);
      }
      for (const [state, v] of lastTasks) this.set({ state }, v);
    },
  });
  let lastOnline = 0;
  new Gauge({
    name: "tether_devices_online",
    help: "Devices whose last presence was online.",
    registers: [registry],
    async collect() {
      if (!src.devicesOnline) return;
      lastOnline = (await withTimeout(src.devicesOnline(), SOURCE_TIMEOUT_MS).catch(() => undefined)) ?? lastOnline;
      this.set(lastOnline);
    },
  });
  new Gauge({
    name: "tether_queue_depth",
    help: "Items waiting in this process's queues: uplink taken from the broker, telemetry samples not yet stored.",
    labelNames: ["queue"],
    registers: [registry],
    collect() {
      if (src.uplinkQueueDepth) this.set({ queue: "uplink" }, src.uplinkQueueDepth());
      if (src.telemetryQueueDepth) this.set({ queue: "telemetry" }, src.telemetryQueueDepth());
    },
  });
  new Gauge({
    name: "tether_api_streams_open",
    help: "Streaming API calls (watches, telemetry streams) open now; capped per principal by TETHER_MAX_STREAMS_PER_PRINCIPAL.",
    registers: [registry],
    collect() {
      if (src.openStreams) this.set(src.openStreams());
    },
  });
  new Gauge({
    name: "tether_dependency_up",
    help: "1 when a dependency (database, broker, event_bus) answered its last health probe.",
    labelNames: ["dependency"],
    registers: [registry],
    collect() {
      for (const [dependency, up] of Object.entries(src.dependencies?.() ?? {})) this.set({ dependency }, up ? 1 : 0);
    },
  });

  // The core's counters are created on first increment with whatever labels they carry, so their
  // Prometheus twins are created on scrape, and recreated if a new label name shows up.
  const exported = new Map<string, { counter: Counter; labelNames: string }>();
  function syncCounters(): void {
    const byName = new Map<string, CounterEntry[]>();
    for (const e of src.counters()) byName.set(e.name, [...(byName.get(e.name) ?? []), e]);
    for (const [name, entries] of byName) {
      const labelNames = [...new Set(entries.flatMap((e) => Object.keys(e.labels)))].sort();
      let ex = exported.get(name);
      if (!ex || ex.labelNames !== labelNames.join(",")) {
        if (ex) registry.removeSingleMetric(name);
        ex = {
          counter: new Counter({ name, help: COUNTER_HELP[name] ?? name.replace(/_/g, " "), labelNames, registers: [registry] }),
          labelNames: labelNames.join(","),
        };
        exported.set(name, ex);
      }
      ex.counter.reset();
      for (const e of entries) ex.counter.inc(e.labels, e.value);
    }
  }

  return {
    registry,
    observeRpc: (service, method, code, seconds) => rpc.observe({ service, method, code }, seconds),
    rpcStarted() {
      inFlight.inc();
      return () => inFlight.dec();
    },
    async scrape() {
      syncCounters();
      return registry.metrics();
    },
  };
}

/** Counts uplink items between the broker and their processing (the `uplink` queue depth gauge). */
export function countingIntake(inner: UplinkIntake, add: (delta: number) => void): UplinkIntake {
  return {
    submit(item) {
      add(1);
      return inner.submit(item).finally(() => add(-1));
    },
    drain: () => inner.drain(),
  };
}
