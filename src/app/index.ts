import type { TetherConfig } from "../config.js";
import { type Clock, systemClock } from "../core/clock.js";
import type { createCounters } from "../core/counters.js";
import { type Logger, redactUrl } from "../log.js";
import type { DependencyMonitor } from "../ops/dependencies.js";
import { startAccess } from "./access.js";
import { createAlarms } from "./alarms.js";
import { startAudit } from "./audit.js";
import { createCertificateChecks, startCertificates } from "./certificates.js";
import { connectDeviceLink, createDeviceApi, deviceAdmission, startEmbeddedBrokerIfUsed } from "./devices.js";
import { startInfrastructure } from "./infrastructure.js";
import { createPresence } from "./presence.js";
import { createAppLifecycle } from "./lifecycle.js";
import { createOps, startOps, startUpkeep } from "./ops.js";
import { createRulesAndJobs } from "./rules-jobs.js";
import { createApiGuards, startApi } from "./servers.js";
import { healthNames, publicServices } from "./services.js";
import { startTasks } from "./tasks.js";
import { startTelemetry } from "./telemetry.js";
import { createWebhooks } from "./webhooks.js";
import { createFirmware } from "./firmware.js";

export interface App {
  /** The bound API port (useful when configured as 0). */
  apiPort: number;
  /** The bound embedded MQTT port; 0 when devices use another broker (`MQTT_URL` or `TETHER_DEVICE_LINK=amqp`). */
  mqttPort: number;
  /** The bound operations port (`/metrics`, `/healthz`, `/readyz`); undefined when turned off. */
  metricsPort?: number;
  /** Dependency health (database, broker link, ...), as published on grpc.health.v1 and /readyz. */
  dependencies: DependencyMonitor;
  /** Where the PKI lives; `ca.crt`, `admin.crt`/`admin.key` connect clients. */
  certsDir: string;
  /** Counters (uplink drops, late events), for tests and metrics. */
  counters: ReturnType<typeof createCounters>;
  /** SQL statements sent so far (counted only with `config.database.countStatements`; else 0). */
  sqlStatements(): number;
  /** Runs the timer sweep now (tests drive time through the Clock and call this). */
  sweep(): Promise<void>;
  /** Runs the alarm presence sweep and escalations now (tests drive time through the Clock). */
  sweepAlarms(): Promise<void>;
  /** Steps every active job once now (the job runner also does it every TETHER_JOB_TICK_MS). */
  runJobs(): Promise<{ jobs: number; dispatched: number; busy: boolean }>;
  /** Runs one webhook relay pass now (fan-out and sends) and waits for its sends. */
  runWebhooks(): Promise<void>;
  /** The telemetry writer: pause() holds writes (samples wait in the queue), resume() releases them. */
  telemetryWriter: { pause(): void; resume(): void };
  /** Runs telemetry partition upkeep and retention now; returns the dropped partitions. */
  maintainTelemetry(): Promise<string[]>;
  /** Sends due certificate expiry warnings now; returns how many devices were warned. */
  warnExpiringCertificates(): Promise<number>;
  /** Deletes audit events past `TETHER_AUDIT_RETENTION_DAYS` now (also done hourly); returns how many. */
  pruneAudit(): Promise<number>;
  /** Graceful stop: health goes NOT_SERVING, in-flight calls finish, ports close, the database flushes. */
  stop(): Promise<void>;
}

/**
 * The composition root: config → adapters → core services → API, broker and bridge. Each part
 * registers its stop step once started; stopping runs them in reverse (see the order below:
 * timers, rules and jobs, ops, gateway, API, watches, sessions, provisioning link, link presence,
 * device link, uplink intake, presence at shutdown, telemetry writer, broker, event bus, database).
 * Tests call it with ephemeral ports and a temp dir.
 */
export async function startApp(config: TetherConfig, log: Logger, clock: Clock = systemClock): Promise<App> {
  const life = createAppLifecycle(log);
  try {
    const x = await startInfrastructure(config, log, clock, life);
    const audit = startAudit(x);
    const checks = await createCertificateChecks(x);
    const admission = deviceAdmission();
    const broker = await startEmbeddedBrokerIfUsed(x, checks, admission);
    const telemetry = await startTelemetry(x);
    // The task path's group commits stop after the uplink intake (its last items still go through them).
    const closeBatches = life.reserve("task batches");
    const closePresence = life.reserve("presence at shutdown");
    const closeIntake = life.reserve("uplink intake");
    const bridge = await connectDeviceLink(x, broker?.port, broker?.presence);
    const certs = await startCertificates(x, checks, { broker, bridge, audit });
    const tasks = await startTasks(x, { bridge, telemetry, certificates: certs, closeIntake, closeBatches, audit });
    const { devices, deviceWatch } = createDeviceApi(x, {
      sendDesiredState: (id) => tasks.dispatcher.sendDesiredState(id),
      // A desired-state change also wakes the device's HTTP polls.
      wakePolls: (id) => tasks.gateway.wake(id),
      certificates: certs.certificates,
    });
    const presence = createPresence(x, closePresence);
    const alarms = createAlarms(x);
    const rulesJobs = createRulesAndJobs(x, tasks, { onRulesChanged: alarms.refresh });
    const access = await startAccess(x);
    const hooks = createWebhooks(x, access.keySecret);
    const firmware = await createFirmware(x, access.keySecret);
    const services = publicServices({
      clock,
      devices,
      deviceWatch,
      connectivity: presence.connectivity,
      tasks: tasks.tasks,
      telemetry: telemetry.telemetry,
      rules: rulesJobs.rules,
      gateway: tasks.gateway,
      jobs: rulesJobs.jobs,
      certificates: certs.certificates,
      provisioning: certs.provisioning,
      auth: access.auth,
      users: access.users,
      shares: access.shares,
      webhooks: hooks.webhooks,
      alarms: alarms.alarms,
      audit: audit.service,
      firmware: firmware.firmware,
    });
    const guards = createApiGuards(x);
    const ops = createOps(x, {
      bridge,
      serviceHealthNames: healthNames(services),
      openStreams: guards.streamLimit.open,
      uplinkQueueDepth: tasks.uplinkQueueDepth,
      telemetryQueueDepth: telemetry.telemetryQueue.depth,
    });
    const api = await startApi(x, { guards, services, ops, access, checks, broker, gateway: tasks.gateway, audit, firmware });
    const opsServer = await startOps(x, ops);

    await presence.start({ broker, intake: tasks.intake });
    await bridge.start(tasks.intake);
    admission.admit(); // the embedded broker's devices connect only now that uplink has a consumer
    await rulesJobs.start();
    hooks.start();
    await alarms.start();
    startUpkeep(x, {
      sweep: tasks.sweep,
      sweepIdle: tasks.sweepIdle,
      dispatcherIdle: () => tasks.dispatcher.idle(),
      maintain: telemetry.maintain,
      rotateTokens: access.rotateTokens,
      refreshCrl: () => checks.crl.refresh(),
      warnExpiring: certs.warnExpiring,
    });
    log.info(
      {
        api: `https://${config.api.host}:${api.port}`,
        mqtt: broker
          ? `mqtts://${config.mqtt.host}:${broker.port}`
          : config.mqttLink.url
            ? redactUrl(config.mqttLink.url)
            : `RabbitMQ MQTT plugin (${config.deviceLink})`,
        broker: broker ? "embedded" : "external",
        metrics: opsServer ? `http://${config.ops.host}:${opsServer.port}/metrics` : undefined,
        certs: config.certsDir,
        database: x.db.embedded ? "embedded (PGlite)" : "postgresql",
        bus: x.amqp ? `rabbitmq (prefix ${config.amqp.prefix})` : "in-process",
      },
      "tether ready",
    );
    return {
      apiPort: api.port,
      mqttPort: broker?.port ?? 0,
      metricsPort: opsServer?.port,
      dependencies: ops.dependencies,
      certsDir: config.certsDir,
      counters: x.counters,
      sqlStatements: () => x.db.statements(),
      sweep: tasks.sweep,
      runJobs: rulesJobs.runJobs,
      runWebhooks: hooks.runWebhooks,
      sweepAlarms: alarms.sweep,
      telemetryWriter: telemetry.writer,
      maintainTelemetry: telemetry.maintain,
      warnExpiringCertificates: certs.warnExpiring,
      pruneAudit: audit.prune,
      stop: () => life.stop(),
    };
  } catch (err) {
    await life.stop();
    throw err;
  }
}
