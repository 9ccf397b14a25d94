import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { hostname } from "node:os";
import path from "node:path";
import type { ConnectRouter } from "@connectrpc/connect";
import { file_tether_device_v1_downlink } from "../gen/tether/device/v1/downlink_pb.js";
import { DeviceGatewayService, file_tether_device_v1_gateway_service } from "../gen/tether/device/v1/gateway_service_pb.js";
import { file_tether_device_v1_uplink } from "../gen/tether/device/v1/uplink_pb.js";
import type { Device } from "../gen/tether/v1/device_pb.js";
import { DeviceService, file_tether_v1_device_service } from "../gen/tether/v1/device_service_pb.js";
import type { Task } from "../gen/tether/v1/task_pb.js";
import { file_tether_v1_telemetry_service, TelemetryService } from "../gen/tether/v1/telemetry_service_pb.js";
import { file_tether_v1_task_service, TaskService } from "../gen/tether/v1/task_service_pb.js";
import { file_tether_v1_rule_service, RuleService } from "../gen/tether/v1/rule_service_pb.js";
import { CertificateService, file_tether_v1_certificate_service } from "../gen/tether/v1/certificate_service_pb.js";
import { file_tether_v1_provisioning_service, ProvisioningService } from "../gen/tether/v1/provisioning_service_pb.js";
import { certificateHandler } from "./api/certificate-handler.js";
import { provisioningHandler } from "./api/provisioning-handler.js";
import type { RevokedCertificate } from "./core/certificates/certificate-ports.js";
import { createCertificateService } from "./core/certificates/certificate-service.js";
import { createDeviceCertificates } from "./core/certificates/device-certificates.js";
import { answerProvisioning } from "./core/certificates/mqtt-provisioning.js";
import { createProvisioningService } from "./core/certificates/provisioning-service.js";
import { connectProvisioningLink } from "./link/provisioning-link.js";
import { createRevocationIndex } from "./core/certificates/revocation-index.js";
import { createCertificateIssuer, describeCertificate } from "./pki/certificate-issuer.js";
import { createCertificateGate } from "./core/certificates/certificate-gate.js";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { crlRoute } from "./api/crl-route.js";
import { createCrlPublisher } from "./pki/crl-publisher.js";
import { createCertificateStore } from "./store/certificate-store.js";
import { createProvisioningStore } from "./store/provisioning-store.js";
import { AuthService, file_tether_v1_auth_service } from "../gen/tether/v1/auth_service_pb.js";
import { file_tether_v1_share_service, ShareService } from "../gen/tether/v1/share_service_pb.js";
import { file_tether_v1_user_service, UserService } from "../gen/tether/v1/user_service_pb.js";
import { authHandler } from "./api/auth-handler.js";
import { shareHandler } from "./api/share-handler.js";
import { userHandler } from "./api/user-handler.js";
import { FULL_ACCESS, serviceAccess } from "./core/access/access.js";
import type { RightsChange } from "./core/access/rights-port.js";
import { createRightsResolver } from "./core/access/rights-resolver.js";
import { createShareService } from "./core/access/share-service.js";
import { createAuthService } from "./core/auth/auth-service.js";
import { createLoginLimiter } from "./core/auth/rate-limit.js";
import { createSessionRevocations } from "./core/auth/session-revocations.js";
import { createTokenIssuer } from "./core/auth/tokens.js";
import { UnauthenticatedError } from "./core/errors.js";
import { createUserService } from "./core/users/user-service.js";
import { createCredentialStore } from "./store/credential-store.js";
import { createGrantStore } from "./store/grant-store.js";
import { createLoginThrottleStore } from "./store/login-throttle-store.js";
import { createUserStore } from "./store/user-store.js";
import { file_tether_v1_job_service, JobService } from "../gen/tether/v1/job_service_pb.js";
import { jobHandler } from "./api/job-handler.js";
import { createJobRunner } from "./core/jobs/job-runner.js";
import { createJobService } from "./core/jobs/job-service.js";
import { taskName } from "./core/tasks/task-record.js";
import { createJobStore } from "./store/job-store.js";
import { ruleHandler } from "./api/rule-handler.js";
import { createEventRules } from "./core/rules/event-rules.js";
import { createRuleService } from "./core/rules/rule-service.js";
import { createScheduler } from "./core/rules/scheduler.js";
import { type TaskRecord, toTaskProto } from "./core/tasks/task-record.js";
import { createRuleStore } from "./store/rule-store.js";
import { authInterceptor } from "./api/auth.js";
import { refuseUnsafeStart } from "./production-safety.js";
import { amqpTls } from "./bus/amqp-tls.js";
import { deviceHandler } from "./api/device-handler.js";
import { gatewayHandler } from "./api/gateway-handler.js";
import { errorMappingInterceptor } from "./api/errors.js";
import { createHealthService } from "./api/health.js";
import { createReflectionService } from "./api/reflection.js";
import { startApiServer } from "./api/server.js";
import { staticFiles } from "./api/static-files.js";
import { streamLimitInterceptor } from "./api/stream-limit.js";
import { taskHandler } from "./api/task-handler.js";
import { telemetryHandler } from "./api/telemetry-handler.js";
import { createMemoryQueue } from "./bus/memory-queue.js";
import { createMemoryFeed } from "./bus/memory-feed.js";
import { jsonCodec } from "./bus/amqp-feed.js";
import { createLocalUplink } from "./bus/local-uplink.js";
import { carriesTelemetry, startAmqpBus } from "./bus/amqp-bus.js";
import { createAmqpLink } from "./link/amqp-link.js";
import type { TetherConfig } from "./config.js";
import { type Clock, systemClock } from "./core/clock.js";
import { createCounters } from "./core/counters.js";
import { createDeviceService } from "./core/devices/device-service.js";
import { createDeviceWatch } from "./core/devices/device-watch.js";
import { createDeviceGateway } from "./core/gateway/device-gateway.js";
import { createDispatcher } from "./core/tasks/dispatcher.js";
import { createLifecycle } from "./core/tasks/task-lifecycle.js";
import { createTaskService } from "./core/tasks/task-service.js";
import { createTaskTimers } from "./core/tasks/task-timers.js";
import { createUplinkProcessor } from "./core/tasks/uplink-processor.js";
import { createBatchWriter } from "./core/telemetry/batch-writer.js";
import { createTelemetryIngest } from "./core/telemetry/ingest.js";
import { createUplinkReceipts } from "./core/uplink-receipts.js";
import { maintainTelemetry } from "./core/telemetry/retention.js";
import { type SampleRecord, toSampleProto } from "./core/telemetry/sample.js";
import { createTelemetryService } from "./core/telemetry/telemetry-service.js";
import { type EmbeddedBroker, startEmbeddedBroker } from "./link/embedded-broker.js";
import { connectMqttBridge } from "./link/mqtt-bridge.js";
import { startLinkPresence } from "./core/devices/link-presence.js";
import { type Logger, redactUrl } from "./log.js";
import { ensureDevPki, issueServiceCertificate } from "./pki/dev-pki.js";
import { openDatabase } from "./store/database.js";
import { createDeviceStore } from "./store/device-store.js";
import { createTaskStore } from "./store/task-store.js";
import { createTelemetryStore } from "./store/telemetry-store.js";
import { observeInterceptor } from "./api/observe.js";
import { createDependencyMonitor, type DependencyMonitor, HEALTH } from "./ops/dependencies.js";
import { countingIntake, createMetrics } from "./ops/metrics.js";
import { bridgeTls } from "./link/bridge-tls.js";
import { startOpsServer } from "./ops/ops-server.js";
import { secureStateFiles } from "./ops/state-files.js";
import { ensurePrivateDir, writePrivateFile } from "./ops/file-modes.js";
import { createOpsQueries } from "./store/ops-queries.js";

/** Bytes of a device PUBLISH besides its payload: topic (≤ ~170 bytes in the scheme), its length and a packet id. */
const MQTT_PACKET_OVERHEAD = 1024;

/** The services listed by server reflection. */
const PUBLIC_SERVICES = [
  DeviceService.typeName, TaskService.typeName, TelemetryService.typeName, RuleService.typeName, DeviceGatewayService.typeName, JobService.typeName,
  CertificateService.typeName, ProvisioningService.typeName,
  AuthService.typeName, UserService.typeName, ShareService.typeName,
  "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
];

/** The certificate identity the dev PKI issues for the CLI: always an admin, so nobody is locked out. */
const BOOTSTRAP_ADMIN = "admin";

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
  /** Runs the timer sweep now (tests drive time through the Clock and call this). */
  sweep(): Promise<void>;
  /** Steps every active job once now (the job runner also does it every TETHER_JOB_TICK_MS). */
  runJobs(): Promise<{ jobs: number; dispatched: number; busy: boolean }>;
  /** The telemetry writer: pause() holds writes (samples wait in the queue), resume() releases them. */
  telemetryWriter: { pause(): void; resume(): void };
  /** Runs telemetry partition upkeep and retention now; returns the dropped partitions. */
  maintainTelemetry(): Promise<string[]>;
  /** Sends due certificate expiry warnings now; returns how many devices were warned. */
  warnExpiringCertificates(): Promise<number>;
  /** Graceful stop: health goes NOT_SERVING, in-flight calls finish, ports close, the database flushes. */
  stop(): Promise<void>;
}

/**
 * The composition root: config → adapters → core services → API, broker and bridge, started in
 * dependency order and stopped in reverse. Tests call it with ephemeral ports and a temp dir.
 */
export async function startApp(config: TetherConfig, log: Logger, clock: Clock = systemClock): Promise<App> {
  refuseUnsafeStart(config, log);
  await secureStateFiles(config, log);
  const pki = await ensureDevPki(config.certsDir, log.child({ component: "pki" }));
  const db = await openDatabase({
    url: config.database.url,
    dataDir: path.join(config.dataDir, "pg"),
    socketDir: path.join(config.dataDir, "run"),
    maxConnections: config.database.poolSize,
    log: log.child({ component: "db" }),
  });
  const stack: Array<() => Promise<void>> = [() => db.close()];
  try {
    const tls = { key: pki.server.keyPem, cert: pki.server.certPem, ca: pki.caPem };
    const counters = createCounters();
    // Revocation: the database is the record, this in-memory index is what every connection and
    // call is checked against, and the revocation feed keeps it current.
    const certificateStore = createCertificateStore(db.sql);
    const revoked = createRevocationIndex((await certificateStore.listRevoked(new Date())).map((c) => c.serialNumber));
    const isRevoked = (serial: string) => revoked.has(serial);
    // Every device or claim certificate passes this gate (revoked, reserved CN, older than its id's deletion).
    const certificateGate = createCertificateGate({ revoked, deletions: await createDeviceStore(db.sql).deletions(), certificates: certificateStore, devices: createDeviceStore(db.sql) });
    const checkCertificate = certificateGate.refusal;
    const crl = createCrlPublisher({ ca: pki.ca, certificates: certificateStore, path: path.join(config.certsDir, "crl.pem"), log: log.child({ component: "pki" }) });
    await crl.refresh();
    // RabbitMQ (AMQP_URL): change feeds across replicas, durable uplink queues; closed just before the database.
    const amqp = config.amqp.url ? await startAmqpBus({ ...config.amqp, url: config.amqp.url }, log.child({ component: "amqp" }), await amqpTls(config.amqp.url, pki)) : undefined;
    if (amqp) stack.push(() => amqp.close());
    // Devices reach Tether through the embedded broker unless MQTT_URL names an external one
    // (Mosquitto) or TETHER_DEVICE_LINK=amqp puts them on RabbitMQ's MQTT plugin.
    let broker: EmbeddedBroker | undefined;
    let admitDevices = () => {};
    if (config.deviceLink === "embedded" && !config.mqttLink.url) {
      const admitted = new Promise<void>((r) => (admitDevices = r));
      broker = await startEmbeddedBroker({
        host: config.mqtt.host, port: config.mqtt.port, tls, counters, isRevoked, checkCertificate, admitDevices: admitted, log: log.child({ component: "mqtt" }),
        // The payload limit plus room for the topic and packet id; the bridge's downlink carries API requests.
        maxPacketBytes: config.mqtt.maxPayloadBytes + MQTT_PACKET_OVERHEAD,
        maxServicePacketBytes: Math.max(config.api.readMaxBytes, config.mqtt.maxPayloadBytes) + 64 * 1024,
      });
      stack.push(() => broker!.close());
    }
    // Unwound after the bridge closes, so the writer drains every sample that arrived.
    let stopWriter = async () => {};
    stack.push(() => stopWriter());

    const coreLog = log.child({ component: "core" });
    const onTaskWatcherError = (err: unknown) => coreLog.error({ err }, "task watcher failed");
    const onDeviceWatcherError = (err: unknown) => coreLog.error({ err }, "device watcher failed");
    const taskFeed = amqp ? amqp.taskFeed(onTaskWatcherError) : createMemoryFeed<Task>(onTaskWatcherError);
    const deviceFeed = amqp ? amqp.deviceFeed(onDeviceWatcherError) : createMemoryFeed<Device>(onDeviceWatcherError);
    const deviceStore = createDeviceStore(db.sql);
    const userStore = createUserStore(db.sql);
    const provisioningStore = createProvisioningStore(db.sql);
    const taskStore = createTaskStore(db.sql);
    const telemetryStore = createTelemetryStore(db.sql);

    // The AMQP uplink intake is closed after the link (nothing new arrives) and before the telemetry
    // writer stops (its acks wait for the writer's commits).
    let closeIntake = async () => {};
    stack.push(() => closeIntake());
    const uplinkLimit = { ratePerS: config.mqtt.uplinkRatePerS, burst: config.mqtt.uplinkBurst };
    const bridgeClientId = config.mqttLink.clientId ?? `tether-${hostname()}-${process.pid}`;
    const mqttBridge =
      config.deviceLink === "amqp" && amqp
        ? undefined
        : await connectMqttBridge({
            url: config.mqttLink.url ?? `mqtts://${config.mqtt.host === "0.0.0.0" ? "127.0.0.1" : config.mqtt.host}:${broker!.port}`,
            tls: await bridgeTls(config.mqttLink, pki),
            clientId: bridgeClientId,
            keepaliveS: config.mqttLink.keepaliveS,
            sessionExpiryS: config.mqttLink.url ? config.mqttLink.sessionExpiryS : 0,
            // Replicas on an external broker split the uplink between them (MQTT 5 shared subscriptions).
            sharedGroup: config.mqttLink.url ? config.mqttLink.sharedGroup : undefined,
            maxPayloadBytes: config.mqtt.maxPayloadBytes,
            uplinkLimit,
            counters,
            log: log.child({ component: "bridge" }),
          });
    const bridge =
      mqttBridge ??
      createAmqpLink({ session: amqp!.session, prefix: config.amqp.prefix, queueType: config.amqp.queueType, maxPayloadBytes: config.mqtt.maxPayloadBytes, uplinkLimit, prefetch: config.amqp.prefetch, counters, log: log.child({ component: "amqp-link" }) });
    stack.push(() => bridge.close());

    const lifecycle = createLifecycle({ tasks: taskStore, feed: taskFeed, clock, counters });
    const dispatcher = createDispatcher({ tasks: taskStore, devices: deviceStore, link: bridge, feed: taskFeed, lifecycle, clock, log: coreLog });
    // Set once the gateway exists: a desired-state change also wakes the device's HTTP polls.
    let wakePolls = (_deviceId: string) => {};
    // Set once the certificate service exists: DeleteDevice's revocations are announced through it.
    let announceRevoked = async (_deviceId: string, _revoked: Array<{ serialNumber: string; revokeTime: Date; reason: number }>) => {};
    const devices = createDeviceService({
      devices: deviceStore,
      clock,
      onDesiredStateChanged: (id) => {
        void dispatcher.sendDesiredState(id);
        wakePolls(id);
      },
      latestTelemetry: async (id) => (await telemetryStore.latest(id)).map(toSampleProto),
      feed: deviceFeed,
      templates: provisioningStore,
      onCertificatesRevoked: (id, revoked) => announceRevoked(id, revoked),
      userExists: async (name) => (await userStore.getUser(name)) !== undefined,
    });
    const deviceWatch = createDeviceWatch({ devices: deviceStore, feed: deviceFeed });
    const tasks = createTaskService({ tasks: taskStore, devices: deviceStore, lifecycle, dispatcher, feed: taskFeed, clock, log: coreLog, maxCreatesInFlight: config.tasks.maxCreatesInFlight });
    const onSampleWatcherError = (err: unknown) => coreLog.error({ err }, "telemetry watcher failed");
    const sampleFeed = amqp ? amqp.sampleFeed(onSampleWatcherError) : createMemoryFeed<SampleRecord>(onSampleWatcherError);
    // Small internal events every replica must see: a revoked certificate cuts its sessions on every
    // replica, a share or unshare drops cached rights everywhere, a job step wakes every WatchJob.
    const onRevocationError = (err: unknown) => coreLog.error({ err }, "revocation subscriber failed");
    const revocations = amqp
      ? amqp.jsonFeed<RevokedCertificate>("revocation", onRevocationError, jsonCodec((r) => ({ ...r, revokeTime: new Date(r.revokeTime) })))
      : createMemoryFeed<RevokedCertificate>(onRevocationError);
    const onJobWatcherError = (err: unknown) => coreLog.error({ err }, "job watcher failed");
    const jobFeed = amqp ? amqp.jsonFeed<string>("job", onJobWatcherError) : createMemoryFeed<string>(onJobWatcherError);
    const onRightsWatcherError = (err: unknown) => coreLog.error({ err }, "rights watcher failed");
    const rightsFeed = amqp ? amqp.jsonFeed<RightsChange>("rights", onRightsWatcherError) : createMemoryFeed<RightsChange>(onRightsWatcherError);
    const onSessionsError = (err: unknown) => coreLog.error({ err }, "ended-sessions subscriber failed");
    const sessionFeed = amqp ? amqp.jsonFeed<string[]>("sessions", onSessionsError) : createMemoryFeed<string[]>(onSessionsError);
    const onPresenceResyncError = (err: unknown) => coreLog.error({ err }, "presence resync subscriber failed");
    const presenceResync = amqp ? amqp.jsonFeed<string>("presence", onPresenceResyncError) : createMemoryFeed<string>(onPresenceResyncError);
    await amqp?.startFeeds();
    // An external broker can become unreachable while Tether runs: devices are then reported
    // offline until their presence is heard again (the embedded broker lives and dies with Tether).
    if (config.mqttLink.url && mqttBridge) {
      const stopLinkPresence = startLinkPresence({ link: mqttBridge, devices: deviceStore, deviceFeed, resyncFeed: presenceResync, replica: bridgeClientId, clock, log: coreLog });
      stack.push(async () => stopLinkPresence());
    }
    const telemetryQueue = createMemoryQueue(config.telemetry.queueCapacity);
    const ingest = createTelemetryIngest({
      queue: telemetryQueue,
      feed: sampleFeed,
      clock,
      counters,
      log: coreLog,
      ephemeral: new Set(config.telemetry.ephemeral),
      limits: { maxAgeMs: config.telemetry.maxAgeSeconds * 1000, maxFutureMs: config.telemetry.maxFutureSeconds * 1000, maxBatch: 10_000, maxMetricsPerDevice: config.telemetry.maxMetricsPerDevice, maxTags: 16 },
    });
    // Several inserts in flight pay off on PostgreSQL; PGlite runs one statement at a time anyway.
    const writer = createBatchWriter({ queue: telemetryQueue, store: telemetryStore, counters, log: coreLog, writers: db.embedded ? 1 : 3 });
    const telemetry = createTelemetryService({ store: telemetryStore, devices: deviceStore, feed: sampleFeed, clock });
    const maintain = () => maintainTelemetry(telemetryStore, clock, config.telemetry.retentionDays, coreLog);
    await maintain();
    writer.start();
    stopWriter = () => writer.stop();
    const issuer = createCertificateIssuer(pki.ca);
    const certificates = createCertificateService({
      certificates: certificateStore,
      devices: deviceStore,
      issuer,
      crl,
      revocations,
      clock,
      log: coreLog,
      defaultValidityDays: config.certificates.deviceValidityDays,
    });
    announceRevoked = certificates.announceRevoked;
    // The bootstrap admin certificate is an ordinary certificate: listed (users/admin) and revocable.
    const adminCert = await certificates.recordUserCertificate(BOOTSTRAP_ADMIN, describeCertificate(pki.admin.certPem));
    if (adminCert.revokeTime) log.child({ component: "pki" }).warn({ path: pki.paths.admin.cert, serialNumber: adminCert.serialNumber }, "the admin client certificate is revoked: remove admin.crt and admin.key from the certs directory to get a new one at the next start");
    const provisioning = createProvisioningService({
      provisioning: provisioningStore,
      certificates: certificateStore,
      devices: deviceStore,
      issuer,
      crl,
      revocations,
      clock,
      log: coreLog,
      defaultValidityDays: config.certificates.deviceValidityDays,
      onDeviceCreated: (device) => deviceFeed.publish(device),
    });
    // Claim certificates may also provision over MQTT (for devices without an HTTP/2 stack). Only
    // the embedded broker enforces the claims' topic ACL so far, so only it gets the topic pair.
    if (broker) {
      const service = await issueServiceCertificate(pki.ca, "tether");
      const provisioningLink = await connectProvisioningLink({
        url: `mqtts://${config.mqtt.host === "0.0.0.0" ? "127.0.0.1" : config.mqtt.host}:${broker.port}`,
        tls: { ca: pki.caPem, cert: service.certPem, key: service.keyPem },
        clientId: `tether-provisioning-${hostname()}-${process.pid}`,
        maxPayloadBytes: config.mqtt.maxPayloadBytes,
        counters,
        log: log.child({ component: "provisioning" }),
        handle: (templateId, req) => answerProvisioning(provisioning, templateId, req, coreLog),
      });
      stack.push(() => provisioningLink.close());
    }
    const deviceCertificates = createDeviceCertificates({ service: certificates, certificates: certificateStore, link: bridge, clock, log: coreLog, warningDays: config.certificates.expiryWarningDays });
    // A receipt goes out once the telemetry queued before it is stored in this replica: the
    // replica that processed the message is the one whose writer holds its samples.
    const telemetryStored = () => telemetryQueue.committed();
    const receipts = createUplinkReceipts({ link: bridge, stored: telemetryStored, clock, counters, log: coreLog });
    const uplink = createUplinkProcessor({ tasks: taskStore, devices: deviceStore, lifecycle, dispatcher, deviceFeed, clock, counters, log: coreLog, telemetry: ingest, certificates: deviceCertificates, receipts });
    // One intake for every transport: the MQTT bridge and the HTTP device gateway submit to it.
    // With RabbitMQ the intake is durable: an item is acked to RabbitMQ after its transaction
    // committed and, for telemetry, after the batch writer stored its samples.
    const amqpIntake = amqp?.uplink(uplink, (item) => (carriesTelemetry(item) ? telemetryStored() : undefined), counters);
    if (amqpIntake) {
      closeIntake = () => amqpIntake.close();
      await amqpIntake.start();
    }
    let uplinkDepth = 0;
    const intake = countingIntake(
      amqpIntake ?? createLocalUplink(uplink, (err, deviceId) => coreLog.error({ err, deviceId }, "uplink processing failed")),
      (d) => (uplinkDepth += d),
    );
    // Over HTTP the PublishUplink answer is the receipt: durably queued with RabbitMQ; embedded,
    // the call also waits until the telemetry is stored.
    const gateway = createDeviceGateway({ tasks: taskStore, devices: deviceStore, dispatcher, intake, stored: amqpIntake ? undefined : telemetryStored, taskFeed, clock, log: coreLog });
    wakePolls = (id) => gateway.wake(id);
    // Rules: tasks a rule creates are committed QUEUED by the scheduler/event engine, then announced
    // on the task feed and dispatched, as CreateTask does.
    const ruleStore = createRuleStore(db.sql);
    const announceTasks = (created: TaskRecord[]) => {
      for (const t of created) taskFeed.publish(toTaskProto(t));
      for (const deviceId of new Set(created.map((t) => t.deviceId))) {
        void dispatcher.kick(deviceId).catch((err: unknown) => coreLog.error({ err, deviceId }, "dispatch after a rule fired failed"));
      }
    };
    const scheduler = createScheduler({
      rules: ruleStore,
      clock,
      log: coreLog,
      onTasksCreated: announceTasks,
      // Job rules: the runner (created below, started after) rolls the new jobs out.
      onJobsStarted: (ids) => {
        for (const id of ids) jobFeed.publish(id);
        jobRunner.wake();
      },
    });
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
    // Jobs: a rollout step commits its tasks QUEUED; they are announced like a rule's, but only
    // devices online at that moment are kicked (offline ones get theirs on hello, or from the
    // sweep's due-task pass): a job over 100,000 offline devices must not cost 100,000 dispatch passes.
    const jobStore = createJobStore(db.sql);
    const jobRunner = createJobRunner({
      jobs: jobStore,
      clock,
      log: coreLog,
      tickMs: config.jobs.tickMs,
      batchSize: config.jobs.batchSize,
      rescanMs: config.jobs.rescanMs,
      onTasksCreated: (created, online) => {
        for (const t of created) taskFeed.publish(toTaskProto(t));
        for (const deviceId of new Set(online)) {
          void dispatcher.kick(deviceId).catch((err: unknown) => coreLog.error({ err, deviceId }, "dispatch after a job step failed"));
        }
      },
      onJobStepped: (id) => jobFeed.publish(id),
      cancelTask: async (deviceId, taskId, reason) => void (await tasks.cancelTask(FULL_ACCESS, taskName(deviceId, taskId), reason)),
    });
    const jobs = createJobService({ jobs: jobStore, clock, jobFeed, taskFeed, onJobsChanged: () => jobRunner.wake() });
    const timers = createTaskTimers({ tasks: taskStore, lifecycle, dispatcher, clock, log: coreLog, ackTimeoutMs: config.tasks.ackTimeoutMs });

    // Users, tokens and rights.
    const credStore = createCredentialStore(db.sql);
    const grantStore = createGrantStore(db.sql);
    const authLog = log.child({ component: "auth" });
    // In-process in embedded mode; with replicas the production bus carries it (same interface).
    const rightsResolver = createRightsResolver({ repo: grantStore, feed: rightsFeed, clock, log: authLog, ttlMs: config.auth.rightsCacheMs });
    if (await userStore.ensureUser({ name: BOOTSTRAP_ADMIN, displayName: "Administrator", admin: true, passwordHash: null, createTime: clock.now() })) {
      authLog.info({ user: BOOTSTRAP_ADMIN }, "created the admin user (no password: `tether users set-password admin` enables login)");
    }
    const tokens = createTokenIssuer({
      keySecret: await signingKeySecret(config, db.embedded, authLog),
      creds: credStore,
      clock,
      log: authLog,
      issuer: config.auth.issuer,
      audience: config.auth.audience,
      accessTtlMs: config.auth.accessTokenTtlS * 1000,
      rotateMs: config.auth.signingKeyRotateS * 1000,
    });
    await tokens.rotate();
    // Ended sessions: in memory for the hot path, the table re-read every poll (see SessionRevocations).
    const sessions = createSessionRevocations({ repo: credStore, feed: sessionFeed, clock, log: authLog, windowMs: tokens.maxTokenAgeMs, pollMs: config.auth.sessionRevocationPollMs });
    await sessions.start();
    stack.push(() => sessions.stop());
    const a = config.auth;
    const limiter = createLoginLimiter(
      { freeAttempts: a.loginFreeAttempts, backoffBaseMs: a.loginBackoffBaseS * 1000, backoffMaxMs: a.loginBackoffMaxS * 1000, perUser: a.loginMaxFailuresPerUser, perAddress: a.loginMaxFailuresPerAddress, windowMs: a.loginWindowS * 1000 },
      createLoginThrottleStore(db.sql),
      clock,
    );
    const auth = createAuthService({ users: userStore, creds: credStore, tokens, limiter, sessions, clock, log: authLog, refreshTtlMs: config.auth.refreshTokenTtlS * 1000 });
    const users = createUserService({ users: userStore, creds: credStore, rights: rightsResolver, sessions, clock });
    const shares = createShareService({ grants: grantStore, users: userStore, devices: deviceStore, rights: rightsResolver, clock });
    const accessFor = async (p: { kind: string; id: string; via: string }) => {
      if (p.kind === "service") return serviceAccess(p.id);
      const access = await rightsResolver.forUser(p.id, { forceAdmin: p.via === "certificate" && p.id === BOOTSTRAP_ADMIN });
      // A certificate proves itself (our CA issued it); a token or key of a deleted user does not.
      if (p.via !== "certificate" && !access.exists) throw new UnauthenticatedError(`user ${p.id} no longer exists`);
      return access;
    };

    const health = createHealthService();
    const opsQueries = createOpsQueries(db.sql);
    const dependencies = createDependencyMonitor({ setStatus: health.setStatus, intervalMs: config.ops.probeIntervalMs, log: log.child({ component: "health" }) });
    dependencies.add(HEALTH.database, () => opsQueries.ping());
    dependencies.add(HEALTH.broker, () => bridge.connected());
    if (amqp) dependencies.add(HEALTH.eventBus, () => amqp.session.isConnected());
    const apiLog = log.child({ component: "api" });
    const streamLimit = streamLimitInterceptor({ maxPerPrincipal: config.api.maxStreamsPerPrincipal, counters, log: apiLog });
    const metrics = createMetrics({
      openStreams: streamLimit.open,
      counters: counters.entries,
      tasksByState: opsQueries.tasksByState,
      devicesOnline: opsQueries.devicesOnline,
      uplinkQueueDepth: () => uplinkDepth,
      telemetryQueueDepth: telemetryQueue.depth,
      dependencies: dependencies.statuses,
    });
    const reflection = createReflectionService(
      [
        file_tether_v1_device_service, file_tether_v1_task_service, file_tether_v1_telemetry_service, file_tether_v1_rule_service, file_tether_v1_job_service,
        file_tether_v1_certificate_service, file_tether_v1_provisioning_service,
        file_tether_v1_auth_service, file_tether_v1_user_service, file_tether_v1_share_service,
        file_tether_device_v1_gateway_service, file_tether_device_v1_downlink, file_tether_device_v1_uplink,
      ],
      PUBLIC_SERVICES,
    );
    const routes = (router: ConnectRouter) => {
      router.service(DeviceService, deviceHandler(devices, deviceWatch));
      router.service(TaskService, taskHandler(tasks));
      router.service(TelemetryService, telemetryHandler(telemetry));
      router.service(RuleService, ruleHandler(rules));
      router.service(CertificateService, certificateHandler(certificates));
      router.service(ProvisioningService, provisioningHandler(provisioning));
      router.service(DeviceGatewayService, gatewayHandler(gateway));
      router.service(AuthService, authHandler(auth, clock));
      router.service(UserService, userHandler(users));
      router.service(ShareService, shareHandler(shares));
      router.service(JobService, jobHandler(jobs));
      health.routes(router);
      reflection(router);
    };
    const api = await startApiServer({
      host: config.api.host,
      port: config.api.port,
      tls,
      routes,
      interceptors: [observeInterceptor({ log: apiLog, observer: metrics, slowCallMs: config.ops.slowCallMs }), errorMappingInterceptor(apiLog), authInterceptor({ authenticate: (b) => auth.authenticate(b), watchSession: sessions.watch, accessFor, deviceServices: [DeviceGatewayService.typeName], isRevoked, checkCertificate, log: apiLog }), streamLimit.interceptor],
      readMaxBytes: config.api.readMaxBytes,
      trustedProxies: config.api.trustedProxies,
      maxConcurrentStreams: config.api.maxConcurrentStreams,
      hstsMaxAgeS: config.api.hstsMaxAgeS,
      log: apiLog,
      // The CRL before the console: the console's routes fall back to index.html for any path.
      http: [crlRoute(() => crl.pem), staticFiles({ root: config.consoleDir, missingHint: "The web console is not built. Run `npm run build:console` (npm start builds it when missing).\n" })],
    });
    // A deleted device's sessions end on every replica, whatever certificate they use (one signed
    // outside Tether cannot be revoked by serial): the gate refuses it from now on.
    const unobserveDeletions = deviceFeed.subscribe((d) => {
      if (!d.deleteTime) return;
      const id = d.name.slice("devices/".length);
      certificateGate.deviceDeleted(id, timestampDate(d.deleteTime));
      broker?.disconnectClient(id);
      gateway.wake(id);
    });
    stack.push(async () => unobserveDeletions());
    // Every revocation, from this replica or (via the feed) another: refuse it from now on, and cut
    // the sessions already open with it — the broker's within the same tick.
    const unobserveRevocations = revocations.subscribe((r) => {
      revoked.add(r.serialNumber);
      broker?.disconnectRevoked(isRevoked);
      api.disconnectRevoked(isRevoked);
      // Revocations made on other replicas too: this replica's /crl.pem must list them (a local one
      // was already written; refreshing again costs one query and one signature).
      if (amqp) void crl.refresh().catch((err: unknown) => coreLog.error({ err }, "CRL refresh failed"));
    });
    stack.push(async () => unobserveRevocations());
    stack.push(async () => {
      health.shutdown();
      await api.close(config.shutdownGraceMs);
    });
    // Unwound before the API closes: parked long polls answer (empty) at once instead of holding
    // the shutdown for the grace period.
    stack.push(async () => gateway.close());

    await dependencies.check();
    dependencies.start();
    const ops = config.ops.port === undefined
      ? undefined
      : await startOpsServer({ host: config.ops.host, port: config.ops.port, metrics: metrics.scrape, metricsContentType: metrics.registry.contentType, ready: dependencies.ready, statuses: dependencies.statuses, log: log.child({ component: "ops" }) });
    stack.push(async () => {
      dependencies.stop();
      await ops?.close();
    });

    await bridge.start(intake);
    admitDevices(); // the embedded broker's devices connect only now that uplink has a consumer
    await eventRules.start();
    scheduler.start();
    jobRunner.start();
    stack.push(async () => {
      unobserveSamples();
      unobserveDevices();
      await jobRunner.stop();
      await scheduler.stop();
      await eventRules.stop();
    });
    let sweeping: Promise<void> | undefined;
    const sweep = () =>
      (sweeping ??= timers.sweep().catch((err: unknown) => coreLog.error({ err }, "task sweep failed")).finally(() => (sweeping = undefined)));
    const interval = setInterval(() => void sweep(), config.tasks.sweepIntervalMs);
    const upkeep = setInterval(() => {
      void maintain().catch((err: unknown) => coreLog.error({ err }, "telemetry upkeep failed"));
      void tokens.rotate().catch((err: unknown) => authLog.error({ err }, "signing key rotation failed"));
    }, 3_600_000);
    // The CRL is rewritten after every revocation, and daily so it never passes its nextUpdate.
    const crlUpkeep = setInterval(() => void crl.refresh().catch((err: unknown) => coreLog.error({ err }, "CRL refresh failed")), 86_400_000);
    const warnExpiring = () => deviceCertificates.warnExpiring().catch((err: unknown) => (coreLog.error({ err }, "certificate expiry check failed"), 0));
    const expiryChecks = setInterval(() => void warnExpiring(), config.certificates.checkIntervalMs);
    stack.push(async () => {
      clearInterval(interval);
      clearInterval(upkeep);
      clearInterval(crlUpkeep);
      clearInterval(expiryChecks);
      await sweeping;
      await dispatcher.idle();
    });
    log.info(
      {
        api: `https://${config.api.host}:${api.port}`,
        mqtt: broker ? `mqtts://${config.mqtt.host}:${broker.port}` : (config.mqttLink.url ? redactUrl(config.mqttLink.url) : `RabbitMQ MQTT plugin (${config.deviceLink})`),
        broker: broker ? "embedded" : "external",
        metrics: ops ? `http://${config.ops.host}:${ops.port}/metrics` : undefined,
        certs: config.certsDir,
        database: db.embedded ? "embedded (PGlite)" : "postgresql",
        bus: amqp ? `rabbitmq (prefix ${config.amqp.prefix})` : "in-process",
      },
      "tether ready",
    );

    let stopping: Promise<void> | undefined;
    return {
      apiPort: api.port,
      mqttPort: broker?.port ?? 0,
      metricsPort: ops?.port,
      dependencies,
      certsDir: config.certsDir,
      counters,
      sweep,
      runJobs: () => jobRunner.runOnce(),
      telemetryWriter: writer,
      maintainTelemetry: maintain,
      warnExpiringCertificates: warnExpiring,
      stop: () => (stopping ??= unwind(stack, log)),
    };
  } catch (err) {
    await unwind(stack, log);
    throw err;
  }
}

/**
 * The secret that seals JWT signing keys at rest: configured, or for the embedded database one
 * generated next to it (0600) on first start. Production without one stores keys unsealed.
 */
async function signingKeySecret(config: TetherConfig, embedded: boolean, log: Logger): Promise<string | undefined> {
  if (config.auth.signingKeySecret) return config.auth.signingKeySecret;
  if (!embedded) {
    log.warn("TETHER_SIGNING_KEY_SECRET is not set: JWT signing keys are stored unsealed in the database");
    return undefined;
  }
  const file = path.join(config.dataDir, "signing-key.secret");
  try {
    return (await readFile(file, "utf8")).trim();
  } catch {
    const secret = randomBytes(32).toString("base64url");
    await ensurePrivateDir(config.dataDir);
    await writePrivateFile(file, secret, "wx").catch(async () => undefined);
    return (await readFile(file, "utf8")).trim();
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
