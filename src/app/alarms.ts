import { createAlarmEngine } from "../core/alarms/alarm-engine.js";
import type { AlarmChange } from "../core/alarms/alarm-record.js";
import { createAlarmService } from "../core/alarms/alarm-service.js";
import { alarmNotificationTable } from "../store/alarm-notification-table.js";
import { createAlarmStore } from "../store/alarm-store.js";
import type { Infrastructure } from "./infrastructure.js";

/**
 * Alarms: the engine every replica runs over every sample and reported state (the database makes
 * each raise happen once), the presence and escalation sweep, and AlarmService. Notifications are
 * recorded in `alarm_notifications` on each change's transaction (the webhook outbox's seam).
 * `refresh` is for the rule service's change hook; `start()` once uplink flows.
 */
export function createAlarms(x: Infrastructure) {
  const { config, clock, coreLog } = x;
  const { alarmFeed, sampleFeed, deviceFeed } = x.feeds;
  const store = createAlarmStore(x.db.sql, alarmNotificationTable());
  const publish = (changes: AlarmChange[]) => {
    for (const c of changes) alarmFeed.publish(c);
  };
  const engine = createAlarmEngine({ alarms: store, clock, log: coreLog, sweepMs: config.alarms.sweepMs, onChanges: publish });
  const alarms = createAlarmService({ alarms: store, devices: x.stores.devices, clock, alarmFeed, onChanges: publish });
  const unobserveSamples = sampleFeed.subscribe((s) => engine.observe(s.deviceId, s.metric, s.value, s.time));
  const unobserveDevices = deviceFeed.subscribe((d) => engine.observeDevice(d));
  return {
    alarms,
    refresh: () => void engine.refresh(),
    /** Runs the presence sweep and escalations now (tests). */
    sweep: () => engine.sweep(),
    async start() {
      await engine.start();
      x.life.add({
        name: "alarms",
        stop: async () => {
          unobserveSamples();
          unobserveDevices();
          await engine.stop();
        },
      });
    },
  };
}
