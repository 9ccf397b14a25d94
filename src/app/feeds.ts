import type { Device } from "../../gen/tether/v1/device_pb.js";
import type { Task } from "../../gen/tether/v1/task_pb.js";
import { jsonCodec } from "../bus/amqp-feed.js";
import type { startAmqpBus } from "../bus/amqp-bus.js";
import { createMemoryFeed } from "../bus/memory-feed.js";
import { type AlarmChange, reviveAlarmChange } from "../core/alarms/alarm-record.js";
import type { AuditRecord } from "../core/ports/audit.js";
import type { RevokedCertificate } from "../core/ports/certificates.js";
import type { RightsChange } from "../core/ports/rights.js";
import type { SampleRecord } from "../core/telemetry/sample.js";
import type { Logger } from "../log.js";

export type AmqpBus = Awaited<ReturnType<typeof startAmqpBus>>;

/**
 * Every change feed, in process or (with RabbitMQ) across replicas; created together because the
 * AMQP bus binds its feed queue once, after the last one (`startFeeds`).
 */
export function createFeeds(amqp: AmqpBus | undefined, coreLog: Logger) {
  const onError = (what: string) => (err: unknown) => coreLog.error({ err }, what);
  const onTaskWatcherError = onError("task watcher failed");
  const onDeviceWatcherError = onError("device watcher failed");
  const onSampleWatcherError = onError("telemetry watcher failed");
  // Small internal events every replica must see: a revoked certificate cuts its sessions on every
  // replica, a share or unshare drops cached rights everywhere, a job step wakes every WatchJob.
  const onRevocationError = onError("revocation subscriber failed");
  const onJobWatcherError = onError("job watcher failed");
  const onRightsWatcherError = onError("rights watcher failed");
  const onSessionsError = onError("ended-sessions subscriber failed");
  const onPresenceResyncError = onError("presence resync subscriber failed");
  const onAlarmWatcherError = onError("alarm watcher failed");
  const onAuditWatcherError = onError("audit watcher failed");
  return {
    taskFeed: amqp ? amqp.taskFeed(onTaskWatcherError) : createMemoryFeed<Task>(onTaskWatcherError),
    deviceFeed: amqp ? amqp.deviceFeed(onDeviceWatcherError) : createMemoryFeed<Device>(onDeviceWatcherError),
    sampleFeed: amqp ? amqp.sampleFeed(onSampleWatcherError) : createMemoryFeed<SampleRecord>(onSampleWatcherError),
    revocations: amqp
      ? amqp.jsonFeed<RevokedCertificate>(
          "revocation",
          onRevocationError,
          jsonCodec((r) => ({ ...r, revokeTime: new Date(r.revokeTime) })),
        )
      : createMemoryFeed<RevokedCertificate>(onRevocationError),
    jobFeed: amqp ? amqp.jsonFeed<string>("job", onJobWatcherError) : createMemoryFeed<string>(onJobWatcherError),
    rightsFeed: amqp ? amqp.jsonFeed<RightsChange>("rights", onRightsWatcherError) : createMemoryFeed<RightsChange>(onRightsWatcherError),
    sessionFeed: amqp ? amqp.jsonFeed<string[]>("sessions", onSessionsError) : createMemoryFeed<string[]>(onSessionsError),
    presenceResync: amqp ? amqp.jsonFeed<string>("presence", onPresenceResyncError) : createMemoryFeed<string>(onPresenceResyncError),
    // Alarm changes, from whichever replica committed them, to every WatchAlarms.
    alarmFeed: amqp
      ? amqp.jsonFeed<AlarmChange>("alarm", onAlarmWatcherError, jsonCodec(reviveAlarmChange))
      : createMemoryFeed<AlarmChange>(onAlarmWatcherError),
    // Committed audit events, for WatchAuditEvents on every replica.
    auditFeed: amqp
      ? amqp.jsonFeed<AuditRecord>(
          "audit",
          onAuditWatcherError,
          jsonCodec((r) => ({ ...r, time: new Date(r.time) })),
        )
      : createMemoryFeed<AuditRecord>(onAuditWatcherError),
  };
}

export type Feeds = ReturnType<typeof createFeeds>;
