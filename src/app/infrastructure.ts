import path from "node:path";
import { amqpTls } from "../bus/amqp-tls.js";
import { startAmqpBus } from "../bus/amqp-bus.js";
import type { TetherConfig } from "../config.js";
import type { Clock } from "../core/clock.js";
import { createCounters } from "../core/counters.js";
import { createTickLoop } from "../core/tick-loop.js";
import type { Logger } from "../log.js";
import { secureStateFiles } from "../ops/state-files.js";
import { ensureDevPki } from "../pki/dev-pki.js";
import { refuseUnsafeStart } from "../production-safety.js";
import { onAuditCommitted } from "../store/audit-context.js";
import { createAuditStore } from "../store/audit-store.js";
import { createCertificateStore } from "../store/certificate-store.js";
import { createCredentialStore } from "../store/credential-store.js";
import { openDatabase, type Sql } from "../store/database.js";
import { createDeviceStore } from "../store/device-store.js";
import { createEmbeddedVacuum } from "../store/embedded-vacuum.js";
import { createGrantStore } from "../store/grant-store.js";
import { createJobStore } from "../store/job-store.js";
import { createLoginThrottleStore } from "../store/login-throttle-store.js";
import { createOpsQueries } from "../store/ops-queries.js";
import { createProvisioningStore } from "../store/provisioning-store.js";
import { createRuleStore } from "../store/rule-store.js";
import { createTaskStore } from "../store/task-store.js";
import { createTelemetryStore } from "../store/telemetry-store.js";
import { createUserStore } from "../store/user-store.js";
import { createFeeds } from "./feeds.js";
import type { AppLifecycle } from "./lifecycle.js";

/**
 * What every other part builds on: the PKI, the database and its stores, RabbitMQ when configured,
 * and the change feeds. The database stops last, the event bus just before it.
 */
export async function startInfrastructure(config: TetherConfig, log: Logger, clock: Clock, life: AppLifecycle) {
  refuseUnsafeStart(config, log);
  await secureStateFiles(config, log);
  const pki = await ensureDevPki(config.certsDir, log.child({ component: "pki" }));
  const db = await openDatabase({
    url: config.database.url,
    dataDir: path.join(config.dataDir, "pg"),
    socketDir: path.join(config.dataDir, "run"),
    maxConnections: config.database.poolSize,
    countStatements: config.database.countStatements,
    sharedBuffers: `${config.database.embeddedSharedBuffersMb}MB`,
    baselineWasm: config.database.embeddedBaselineWasm,
    log: log.child({ component: "db" }),
  });
  // The database stops last, so after a clean stop its line is the log's last: the one that says nothing was lost.
  life.add({ name: "database", stop: () => db.close(), done: db.embedded ? "database flushed to disk and closed" : "database connections closed" });
  if (db.embedded && config.database.embeddedVacuumS > 0) startEmbeddedVacuum(db.sql, config.database.embeddedVacuumS * 1000, log, life);
  const coreLog = log.child({ component: "core" });
  // RabbitMQ (AMQP_URL): change feeds across replicas, durable uplink queues; closed just before the database.
  const amqp = config.amqp.url
    ? await startAmqpBus({ ...config.amqp, url: config.amqp.url }, log.child({ component: "amqp" }), await amqpTls(config.amqp.url, pki))
    : undefined;
  if (amqp) life.add({ name: "event bus", stop: () => amqp.close() });
  const feeds = createFeeds(amqp, coreLog);
  await amqp?.startFeeds();
  const stores = {
    devices: createDeviceStore(db.sql),
    users: createUserStore(db.sql),
    provisioning: createProvisioningStore(db.sql),
    tasks: createTaskStore(db.sql),
    // COPY staging on PostgreSQL; PGlite's socket server cannot take COPY FROM STDIN, and runs one statement at a time.
    telemetry: createTelemetryStore(db.sql, db.embedded ? { singleWriter: true } : { copy: true }),
    certificates: createCertificateStore(db.sql),
    rules: createRuleStore(db.sql),
    jobs: createJobStore(db.sql),
    credentials: createCredentialStore(db.sql),
    grants: createGrantStore(db.sql),
    loginThrottle: createLoginThrottleStore(db.sql),
    ops: createOpsQueries(db.sql),
    audit: createAuditStore(db.sql),
  };
  // Every audit event committed with a change goes to WatchAuditEvents (after its COMMIT).
  onAuditCommitted(db.sql, (events) => {
    for (const e of events) feeds.auditFeed.publish(e);
  });
  return {
    config,
    log,
    clock,
    coreLog,
    life,
    pki,
    db,
    tls: { key: pki.server.keyPem, cert: pki.server.certPem, ca: pki.caPem },
    counters: createCounters(),
    amqp,
    feeds,
    stores,
  };
}

export type Infrastructure = Awaited<ReturnType<typeof startInfrastructure>>;

/**
 * The embedded database's autovacuum (PostgreSQL runs its own). A step that found work is followed
 * by the next one a second later, so a backlog of tables is worked off without one long pause.
 */
function startEmbeddedVacuum(sql: Sql, intervalMs: number, log: Logger, life: AppLifecycle): void {
  const vacuum = createEmbeddedVacuum(sql);
  const vlog = log.child({ component: "db" });
  const loop = createTickLoop(
    async () => {
      const started = Date.now();
      const done = await vacuum.step();
      if (!done) return intervalMs;
      vlog.debug({ ...done, ms: Date.now() - started }, "embedded database: table vacuumed or analyzed");
      return Math.min(intervalMs, 1000);
    },
    { defaultDelayMs: intervalMs, onError: (err) => vlog.warn({ err }, "embedded database: vacuum failed") },
  );
  loop.start();
  life.add({ name: "embedded vacuum", stop: () => loop.stop() });
}
