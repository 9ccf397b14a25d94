/**
 * Alarm rules over the core harness: the rule service, the alarm store (its notifications in the
 * `alarm_notifications` table) and N alarm engines over the same database, each with its own
 * evaluator, as N replicas have.
 */
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { CreateDeviceRequestSchema } from "../../gen/tether/v1/device_service_pb.js";
import { type Rule, RuleSchema } from "../../gen/tether/v1/rule_pb.js";
import { createMemoryFeed } from "../../src/bus/memory-feed.js";
import { FULL_ACCESS } from "../../src/core/access/access.js";
import { type AlarmEngine, createAlarmEngine } from "../../src/core/alarms/alarm-engine.js";
import type { AlarmChange } from "../../src/core/alarms/alarm-record.js";
import { createAlarmService } from "../../src/core/alarms/alarm-service.js";
import type { CoreLogger } from "../../src/core/log.js";
import { createRuleService } from "../../src/core/rules/rule-service.js";
import { alarmNotificationTable, listAlarmNotifications } from "../../src/store/alarm-notification-table.js";
import { createAlarmStore } from "../../src/store/alarm-store.js";
import { createRuleStore } from "../../src/store/rule-store.js";
import { type CoreHarness, wireCore } from "./core-harness.js";

const quiet: CoreLogger = { debug() {}, info() {}, warn() {}, error() {} };

export interface AlarmHarness {
  core: CoreHarness;
  rules: ReturnType<typeof createRuleService>;
  alarms: ReturnType<typeof createAlarmService>;
  store: ReturnType<typeof createAlarmStore>;
  replicas: AlarmEngine[];
  /** Every change published, in order. */
  published: AlarmChange[];
  addLed(id: string, labels?: Record<string, string>): Promise<void>;
  /** Creates a rule (as the admin) and makes every replica load it. */
  createRule(id: string, rule: MessageInitShape<typeof RuleSchema>): Promise<Rule>;
  /** The recorded notifications, oldest first. */
  notifications(alarmId?: string): Promise<Array<{ alarmId: string; type: string }>>;
  /** Waits for every replica's decisions to reach the database. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

export async function wireAlarms(replicas = 1, start?: string): Promise<AlarmHarness> {
  const core = await wireCore(start);
  const ruleStore = createRuleStore(core.sql);
  const store = createAlarmStore(core.sql, alarmNotificationTable());
  const alarmFeed = createMemoryFeed<AlarmChange>();
  const published: AlarmChange[] = [];
  alarmFeed.subscribe((c) => published.push(c));
  const publish = (list: AlarmChange[]) => {
    for (const c of list) alarmFeed.publish(c);
  };
  const engines = Array.from({ length: replicas }, () => createAlarmEngine({ alarms: store, clock: core.clock, log: quiet, onChanges: publish }));
  const rules = createRuleService({ rules: ruleStore, devices: core.stores.devices, clock: core.clock });
  const alarms = createAlarmService({ alarms: store, devices: core.stores.devices, clock: core.clock, alarmFeed, onChanges: publish });
  return {
    core,
    rules,
    alarms,
    store,
    replicas: engines,
    published,
    async addLed(id, labels = {}) {
      await core.devices.createDevice(FULL_ACCESS, create(CreateDeviceRequestSchema, { deviceId: id, device: { labels, kind: { case: "led", value: {} } } }));
    },
    async createRule(id, rule) {
      const made = await rules.createRule(FULL_ACCESS, { $typeName: "tether.v1.CreateRuleRequest", ruleId: id, rule: create(RuleSchema, rule) });
      for (const e of engines) await e.refresh();
      return made;
    },
    notifications: async (alarmId) => (await listAlarmNotifications(core.sql, alarmId)).map(({ alarmId: a, type }) => ({ alarmId: a, type })),
    async idle() {
      await Promise.all(engines.map((e) => e.idle()));
    },
    async close() {
      for (const e of engines) await e.stop();
      await core.close();
    },
  };
}
