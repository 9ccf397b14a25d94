import { createHealthService, type SettableServingStatus } from "../api/health.js";
import { createDependencyMonitor, HEALTH } from "../ops/dependencies.js";
import { createMetrics } from "../ops/metrics.js";
import { startOpsServer } from "../ops/ops-server.js";
import type { Bridge } from "./devices.js";
import type { Infrastructure } from "./infrastructure.js";

/**
 * Health (grpc.health.v1, one name per dependency and per public service), the dependency
 * probes and the Prometheus metrics. The services' names follow the server's overall status:
 * a service is as available as the dependencies it needs.
 */
export function createOps(
  x: Infrastructure,
  deps: { bridge: Bridge; serviceHealthNames: string[]; openStreams: () => number; uplinkQueueDepth: () => number; telemetryQueueDepth: () => number },
) {
  const { amqp } = x;
  const health = createHealthService();
  const setStatus = (name: string, status: SettableServingStatus) => {
    health.setStatus(name, status);
    if (name === "") for (const s of deps.serviceHealthNames) health.setStatus(s, status);
  };
  const dependencies = createDependencyMonitor({ setStatus, intervalMs: x.config.ops.probeIntervalMs, log: x.log.child({ component: "health" }) });
  dependencies.add(HEALTH.database, () => x.stores.ops.ping());
  dependencies.add(HEALTH.broker, () => deps.bridge.connected());
  if (amqp) dependencies.add(HEALTH.eventBus, () => amqp.session.isConnected());
  const metrics = createMetrics({
    openStreams: deps.openStreams,
    counters: x.counters.entries,
    tasksByState: x.stores.ops.tasksByState,
    devicesOnline: x.stores.ops.devicesOnline,
    uplinkQueueDepth: deps.uplinkQueueDepth,
    telemetryQueueDepth: deps.telemetryQueueDepth,
    dependencies: dependencies.statuses,
  });
  return { health, dependencies, metrics };
}

export type Ops = ReturnType<typeof createOps>;

/** Probes everything once, then on a timer; serves /metrics, /healthz and /readyz unless turned off. */
export async function startOps(x: Infrastructure, o: Ops) {
  const { config } = x;
  const { dependencies, metrics } = o;
  await dependencies.check();
  dependencies.start();
  const ops =
    config.ops.port === undefined
      ? undefined
      : await startOpsServer({
          host: config.ops.host,
          port: config.ops.port,
          metrics: metrics.scrape,
          metricsContentType: metrics.registry.contentType,
          ready: dependencies.ready,
          statuses: dependencies.statuses,
          log: x.log.child({ component: "ops" }),
        });
  x.life.add({
    name: "ops server",
    stop: async () => {
      dependencies.stop();
      await ops?.close();
    },
  });
  return ops;
}

/** Periodic upkeep: the task sweep, telemetry retention, signing-key rotation, the CRL and expiry warnings. */
export function startUpkeep(
  x: Infrastructure,
  u: {
    sweep: () => Promise<void>;
    sweepIdle: () => Promise<void> | undefined;
    dispatcherIdle: () => Promise<void>;
    maintain: () => Promise<unknown>;
    rotateTokens: () => void;
    refreshCrl: () => Promise<unknown>;
    warnExpiring: () => Promise<number>;
  },
) {
  const { config, coreLog } = x;
  const interval = setInterval(() => void u.sweep(), config.tasks.sweepIntervalMs);
  const upkeep = setInterval(() => {
    void u.maintain().catch((err: unknown) => coreLog.error({ err }, "telemetry upkeep failed"));
    u.rotateTokens();
  }, 3_600_000);
  // The CRL is rewritten after every revocation, and daily so it never passes its nextUpdate.
  const crlUpkeep = setInterval(() => void u.refreshCrl().catch((err: unknown) => coreLog.error({ err }, "CRL refresh failed")), 86_400_000);
  const expiryChecks = setInterval(() => void u.warnExpiring(), config.certificates.checkIntervalMs);
  x.life.add({
    name: "timers",
    stop: async () => {
      clearInterval(interval);
      clearInterval(upkeep);
      clearInterval(crlUpkeep);
      clearInterval(expiryChecks);
      await u.sweepIdle();
      await u.dispatcherIdle();
    },
  });
}
