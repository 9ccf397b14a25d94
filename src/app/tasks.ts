import { type Audit, RENEW_OVER_MQTT } from "./audit.js";
import { deviceName } from "../core/devices/device-name.js";
import { carriesTelemetry } from "../bus/amqp-bus.js";
import { createLocalUplink } from "../bus/local-uplink.js";
import { withCallAudit } from "../store/audit-context.js";
import { createDeviceGateway } from "../core/gateway/device-gateway.js";
import { createDispatcher } from "../core/tasks/dispatcher.js";
import { createTaskBatches } from "../core/tasks/task-batches.js";
import { createTaskAnnouncer } from "../core/tasks/task-intake.js";
import { createLifecycle } from "../core/tasks/task-lifecycle.js";
import { createTaskService } from "../core/tasks/task-service.js";
import { createTaskTimers } from "../core/tasks/task-timers.js";
import { createUplinkProcessor } from "../core/uplink/uplink-processor.js";
import { createUplinkReceipts } from "../core/uplink/receipts.js";
import { countingIntake } from "../ops/metrics.js";
import type { Certificates } from "./certificates.js";
import type { Bridge } from "./devices.js";
import type { Infrastructure } from "./infrastructure.js";
import type { Telemetry } from "./telemetry.js";

/**
 * Tasks and the uplink: dispatcher, TaskService, the uplink processor behind one intake for every
 * transport, the HTTP device gateway and the timer sweep. `closeIntake` is the stop slot reserved
 * before the device link: the AMQP intake closes after the link (nothing new arrives) and before
 * the telemetry writer stops (its acks wait for the writer's commits).
 */
export async function startTasks(
  x: Infrastructure,
  deps: {
    bridge: Bridge;
    telemetry: Telemetry;
    certificates: Certificates;
    closeIntake: (stop: () => Promise<void>) => void;
    closeBatches: (stop: () => Promise<void>) => void;
    audit: Audit;
  },
) {
  const { config, amqp, clock, counters, coreLog } = x;
  const { bridge } = deps;
  const { taskFeed, deviceFeed } = x.feeds;
  const taskStore = x.stores.tasks;
  const deviceStore = x.stores.devices;
  const { telemetryStored } = deps.telemetry;
  const lifecycle = createLifecycle({ tasks: taskStore, feed: taskFeed, clock, counters });
  const dispatcher = createDispatcher({ tasks: taskStore, devices: deviceStore, link: bridge, feed: taskFeed, lifecycle, clock, log: coreLog });
  // The one announcement after a task was committed, whoever created it (CreateTask, rules, jobs).
  const announceTasks = createTaskAnnouncer({ feed: taskFeed, dispatcher, log: coreLog });
  // Group commit of CreateTask calls: one transaction for what arrives together. The embedded
  // database has one connection, so one flush at a time; PostgreSQL's pool takes two.
  const batches = createTaskBatches({ tasks: taskStore, devices: deviceStore, clock, maxFlushes: x.db.embedded ? 1 : 2 });
  deps.closeBatches(() => batches.close());
  const tasks = createTaskService({
    tasks: taskStore,
    devices: deviceStore,
    lifecycle,
    dispatcher,
    feed: taskFeed,
    announce: announceTasks,
    // The caller's audit event rides with its task into the batch (see store/audit-context.ts).
    create: (t) => batches.create(withCallAudit(t)),
    readDevice: batches.device,
    clock,
    maxCreatesInFlight: config.tasks.maxCreatesInFlight,
  });
  const receipts = createUplinkReceipts({ link: bridge, stored: telemetryStored, clock, counters, log: coreLog });
  const uplink = createUplinkProcessor({
    tasks: taskStore,
    devices: deviceStore,
    lifecycle,
    dispatcher,
    deviceFeed,
    clock,
    counters,
    log: coreLog,
    telemetry: deps.telemetry.ingest,
    // A renewal asked over MQTT is audited as the device, with the certificate it issues.
    certificates: {
      renewalRequested: (deviceId, req) =>
        deps.audit.asDevice({ principal: deviceName(deviceId), method: RENEW_OVER_MQTT, resource: deviceName(deviceId) }, () =>
          deps.certificates.deviceCertificates.renewalRequested(deviceId, req),
        ),
    },
    receipts,
    batches,
    livenessIntervalMs: x.config.presence.livenessIntervalS * 1000,
  });
  // One intake for every transport: the MQTT bridge and the HTTP device gateway submit to it.
  // With RabbitMQ the intake is durable: an item is acked to RabbitMQ after its transaction
  // committed and, for telemetry, after the batch writer stored its samples.
  const amqpIntake = amqp?.uplink(uplink, (item) => (carriesTelemetry(item) ? telemetryStored() : undefined), counters);
  if (amqpIntake) {
    deps.closeIntake(() => amqpIntake.close());
    await amqpIntake.start();
  }
  let uplinkDepth = 0;
  const intake = countingIntake(
    amqpIntake ?? createLocalUplink(uplink, (err, deviceId) => coreLog.error({ err, deviceId }, "uplink processing failed")),
    (d) => (uplinkDepth += d),
  );
  // Over HTTP the PublishUplink answer is the receipt: durably queued with RabbitMQ; embedded,
  // the call also waits until the telemetry is stored.
  const gateway = createDeviceGateway({
    tasks: taskStore,
    devices: deviceStore,
    dispatcher,
    intake,
    stored: amqpIntake ? undefined : telemetryStored,
    taskFeed,
    clock,
    log: coreLog,
  });
  const timers = createTaskTimers({ tasks: taskStore, lifecycle, dispatcher, clock, log: coreLog, ackTimeoutMs: config.tasks.ackTimeoutMs });
  // One sweep at a time: the interval and tests (App.sweep) share it.
  let sweeping: Promise<void> | undefined;
  const sweep = () =>
    (sweeping ??= timers
      .sweep()
      .catch((err: unknown) => coreLog.error({ err }, "task sweep failed"))
      .finally(() => (sweeping = undefined)));
  return {
    dispatcher,
    announceTasks,
    tasks,
    intake,
    gateway,
    sweep,
    /** Waits for a running sweep (stopping). */
    sweepIdle: () => sweeping,
    uplinkQueueDepth: () => uplinkDepth,
  };
}

export type Tasks = Awaited<ReturnType<typeof startTasks>>;
