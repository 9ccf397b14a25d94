import { hostname } from "node:os";
import path from "node:path";
import type { ConnectRouter } from "@connectrpc/connect";
import { file_tether_device_v1_downlink } from "../gen/tether/device/v1/downlink_pb.js";
import { file_tether_device_v1_uplink } from "../gen/tether/device/v1/uplink_pb.js";
import type { Device } from "../gen/tether/v1/device_pb.js";
import { DeviceService, file_tether_v1_device_service } from "../gen/tether/v1/device_service_pb.js";
import type { Task } from "../gen/tether/v1/task_pb.js";
import { file_tether_v1_telemetry_service, TelemetryService } from "../gen/tether/v1/telemetry_service_pb.js";
import { file_tether_v1_task_service, TaskService } from "../gen/tether/v1/task_service_pb.js";
import { file_tether_v1_rule_service, RuleService } from "../gen/tether/v1/rule_service_pb.js";
import { ruleHandler } from "./api/rule-handler.js";
import { createEventRules } from "./core/rules/event-rules.js";
import { createRuleService } from "./core/rules/rule-service.js";
import { createScheduler } from "./core/rules/scheduler.js";
import { type TaskRecord, toTaskProto } from "./core/tasks/task-record.js";
import { createRuleStore } from "./store/rule-store.js";
import { authInterceptor } from "./api/auth.js";
import { deviceHandler } from "./api/device-handler.js";
import { errorMappingInterceptor } from "./api/errors.js";
import { createHealthService } from "./api/health.js";
import { createReflectionService } from "./api/reflection.js";
import { startApiServer } from "./api/server.js";
import { taskHandler } from "./api/task-handler.js";
import { telemetryHandler } from "./api/telemetry-handler.js";
import { createMemoryQueue } from "./bus/memory-queue.js";
import { createMemoryFeed } from "./bus/memory-feed.js";
import type { TetherConfig } from "./config.js";
import { type Clock, systemClock } from "./core/clock.js";
import { createCounters } from "./core/counters.js";
import { createDeviceService } from "./core/devices/device-service.js";
import { createDispatcher } from "./core/tasks/dispatcher.js";
import { createLifecycle } from "./core/tasks/task-lifecycle.js";
import { createTaskService } from "./core/tasks/task-service.js";
import { createTaskTimers } from "./core/tasks/task-timers.js";
import { createUplinkProcessor } from "./core/tasks/uplink-processor.js";
import { createBatchWriter } from "./core/telemetry/batch-writer.js";
import { createTelemetryIngest } from "./core/telemetry/ingest.js";
import { maintainTelemetry } from "./core/telemetry/retention.js";
import { type SampleRecord, toSampleProto } from "./core/telemetry/sample.js";
import { createTelemetryService } from "./core/telemetry/telemetry-service.js";
import { startEmbeddedBroker } from "./link/embedded-broker.js";
import { connectMqttBridge } from "./link/mqtt-bridge.js";
import type { Logger } from "./log.js";
import { ensureDevPki, issueServiceCertificate } from "./pki/dev-pki.js";
import { openDatabase } from "./store/database.js";
import { createDeviceStore } from "./store/device-store.js";
import { createTaskStore } from "./store/task-store.js";
import { createTelemetryStore } from "./store/telemetry-store.js";

/** The services listed by server reflection. */
const PUBLIC_SERVICES = [DeviceService.typeName, TaskService.typeName, TelemetryService.typeName, RuleService.typeName, "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"];

export interface App {
  /** The bound API port (useful when configured as 0). */
  apiPort: number;
  /** The bound embedded MQTT port. */
  mqttPort: number;
  /** Where the PKI lives; `ca.crt`, `admin.crt`/`admin.key` connect clients. */
  certsDir: string;
  /** Counters (uplink drops, late events), for tests and metrics. */
  counters: ReturnType<typeof createCounters>;
  /** Runs the timer sweep now (tests drive time through the Clock and call this). */
  sweep(): Promise<void>;
  /** The telemetry writer: pause() holds writes (samples wait in the queue), resume() releases them. */
  telemetryWriter: { pause(): void; resume(): void };
  /** Runs telemetry partition upkeep and retention now; returns the dropped partitions. */
  maintainTelemetry(): Promise<string[]>;
  /** Graceful stop: health goes NOT_SERVING, in-flight calls finish, ports close, the database flushes. */
  stop(): Promise<void>;
}

/**
 * The composition root: config → adapters → core services → API, broker and bridge, started in
 * dependency order and stopped in reverse. Tests call it with ephemeral ports and a temp dir.
 */
export async function startApp(config: TetherConfig, log: Logger, clock: Clock = systemClock): Promise<App> {
  const pki = await ensureDevPki(config.certsDir, log.child({ component: "pki" }));
  const db = await openDatabase({
    url: config.database.url,
    dataDir: path.join(config.dataDir, "pg"),
    maxConnections: config.database.poolSize,
    log: log.child({ component: "db" }),
  });
  const stack: Array<() => Promise<void>> = [() => db.close()];
  try {
    const tls = { key: pki.server.keyPem, cert: pki.server.certPem, ca: pki.caPem };
    const counters = createCounters();
    const broker = await startEmbeddedBroker({ host: config.mqtt.host, port: config.mqtt.port, tls, counters, log: log.child({ component: "mqtt" }) });
    stack.push(() => broker.close());
    // Unwound after the bridge closes, so the writer drains every sample that arrived.
    let stopWriter = async () => {};
    stack.push(() => stopWriter());

    const coreLog = log.child({ component: "core" });
    const taskFeed = createMemoryFeed<Task>((err) => coreLog.error({ err }, "task watcher failed"));
    const deviceFeed = createMemoryFeed<Device>((err) => coreLog.error({ err }, "device watcher failed"));
    const deviceStore = createDeviceStore(db.sql);
    const taskStore = createTaskStore(db.sql);
    const telemetryStore = createTelemetryStore(db.sql);

    // Tether's own MQTT identity: issued in memory at every start, never written to disk.
    const service = await issueServiceCertificate(pki.ca, "tether");
    const bridge = await connectMqttBridge({
      url: `mqtts://${config.mqtt.host === "0.0.0.0" ? "127.0.0.1" : config.mqtt.host}:${broker.port}`,
      tls: { ca: pki.caPem, cert: service.certPem, key: service.keyPem },
      clientId: `tether-${hostname()}-${process.pid}`,
      maxPayloadBytes: config.mqtt.maxPayloadBytes,
      counters,
      log: log.child({ component: "bridge" }),
    });
    stack.push(() => bridge.close());

    const lifecycle = createLifecycle({ tasks: taskStore, feed: taskFeed, clock, counters });
    const dispatcher = createDispatcher({ tasks: taskStore, devices: deviceStore, link: bridge, feed: taskFeed, lifecycle, clock, log: coreLog });
    const devices = createDeviceService({
      devices: deviceStore,
      clock,
      onDesiredStateChanged: (id) => void dispatcher.sendDesiredState(id),
      latestTelemetry: async (id) => (await telemetryStore.latest(id)).map(toSampleProto),
    });
    const tasks = createTaskService({ tasks: taskStore, devices: deviceStore, lifecycle, dispatcher, feed: taskFeed, clock, log: coreLog, maxCreatesInFlight: config.tasks.maxCreatesInFlight });
    const sampleFeed = createMemoryFeed<SampleRecord>((err) => coreLog.error({ err }, "telemetry watcher failed"));
    const telemetryQueue = createMemoryQueue(config.telemetry.queueCapacity);
    const ingest = createTelemetryIngest({
      queue: telemetryQueue,
      feed: sampleFeed,
      clock,
      counters,
      log: coreLog,
      ephemeral: new Set(config.telemetry.ephemeral),
      limits: { maxAgeMs: config.telemetry.maxAgeSeconds * 1000, maxFutureMs: config.telemetry.maxFutureSeconds * 1000, maxBatch: 10_000, maxMetricsPerDevice: 200, maxTags: 16 },
    });
    // Several inserts in flight pay off on PostgreSQL; PGlite runs one statement at a time anyway.
    const writer = createBatchWriter({ queue: telemetryQueue, store: telemetryStore, counters, log: coreLog, writers: db.embedded ? 1 : 3 });
    const telemetry = createTelemetryService({ store: telemetryStore, devices: deviceStore, feed: sampleFeed, clock });
    const maintain = () => maintainTelemetry(telemetryStore, clock, config.telemetry.retentionDays, coreLog);
    await maintain();
    writer.start();
    stopWriter = () => writer.stop();
    const uplink = createUplinkProcessor({ tasks: taskStore, devices: deviceStore, lifecycle, dispatcher, deviceFeed, clock, counters, log: coreLog, telemetry: ingest });
    // Rules: tasks a rule creates are committed QUEUED by the scheduler/event engine, then announced
    // on the task feed and dispatched, as CreateTask does.
    const ruleStore = createRuleStore(db.sql);
    const announceTasks = (created: TaskRecord[]) => {
      for (const t of created) taskFeed.publish(toTaskProto(t));
      for (const deviceId of new Set(created.map((t) => t.deviceId))) {
        void dispatcher.kick(deviceId).catch((err: unknown) => coreLog.error({ err, deviceId }, "dispatch after a rule fired failed"));
      }
    };
    const scheduler = createScheduler({ rules: ruleStore, clock, log: coreLog, onTasksCreated: announceTasks });
    const eventRules = createEventRules({ rules: ruleStore, clock, log: coreLog, onTasksCreated: announceTasks });
    const rules = createRuleService({
      rules: ruleStore,
      devices: deviceStore,
      clock,
      onRulesChanged: () => {
        scheduler.wake();
        void eventRules.refresh();
      },
    });
    // Event rules observe every accepted telemetry sample and every reported state.
    const unobserveSamples = sampleFeed.subscribe((s) => eventRules.observe(s.deviceId, s.metric, s.value, s.time));
    const unobserveDevices = deviceFeed.subscribe((d) => eventRules.observeDevice(d));
    const timers = createTaskTimers({ tasks: taskStore, lifecycle, dispatcher, clock, log: coreLog, ackTimeoutMs: config.tasks.ackTimeoutMs });

    const health = createHealthService();
    const reflection = createReflectionService(
      [file_tether_v1_device_service, file_tether_v1_task_service, file_tether_v1_telemetry_service, file_tether_v1_rule_service, file_tether_device_v1_downlink, file_tether_device_v1_uplink],
      PUBLIC_SERVICES,
    );
    const routes = (router: ConnectRouter) => {
      router.service(DeviceService, deviceHandler(devices));
      router.service(TaskService, taskHandler(tasks));
      router.service(TelemetryService, telemetryHandler(telemetry));
      router.service(RuleService, ruleHandler(rules));
      health.routes(router);
      reflection(router);
    };
    const apiLog = log.child({ component: "api" });
    const api = await startApiServer({
      host: config.api.host,
      port: config.api.port,
      tls,
      routes,
      interceptors: [errorMappingInterceptor(apiLog), authInterceptor()],
      readMaxBytes: config.api.readMaxBytes,
      log: apiLog,
    });
    stack.push(async () => {
      health.shutdown();
      await api.close(config.shutdownGraceMs);
    });

    await bridge.start(uplink);
    await eventRules.start();
    scheduler.start();
    stack.push(async () => {
      unobserveSamples();
      unobserveDevices();
      await scheduler.stop();
      await eventRules.stop();
    });
    let sweeping: Promise<void> | undefined;
    const sweep = () =>
      (sweeping ??= timers.sweep().catch((err: unknown) => coreLog.error({ err }, "task sweep failed")).finally(() => (sweeping = undefined)));
    const interval = setInterval(() => void sweep(), config.tasks.sweepIntervalMs);
    const upkeep = setInterval(() => void maintain().catch((err: unknown) => coreLog.error({ err }, "telemetry upkeep failed")), 3_600_000);
    stack.push(async () => {
      clearInterval(interval);
      clearInterval(upkeep);
      await sweeping;
      await dispatcher.idle();
    });
    log.info({ api: `https://${config.api.host}:${api.port}`, mqtt: `mqtts://${config.mqtt.host}:${broker.port}`, certs: config.certsDir, database: db.embedded ? "embedded (PGlite)" : "postgresql" }, "tether ready");

    let stopping: Promise<void> | undefined;
    return {
      apiPort: api.port,
      mqttPort: broker.port,
      certsDir: config.certsDir,
      counters,
      sweep,
      telemetryWriter: writer,
      maintainTelemetry: maintain,
      stop: () => (stopping ??= unwind(stack, log)),
    };
  } catch (err) {
    await unwind(stack, log);
    throw err;
  }
}

/** Stops components in reverse start order; one failure does not keep the others running. */
async function unwind(stack: Array<() => Promise<void>>, log: Logger): Promise<void> {
  for (const stop of stack.reverse()) {
    try {
      await stop();
    } catch (err) {
      log.error({ err }, "error during shutdown");
    }
  }
}
