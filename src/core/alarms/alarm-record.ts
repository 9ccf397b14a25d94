import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type Alarm, type AlarmEvent, AlarmEvent_Type, AlarmEventSchema, Alarm_State, AlarmSchema } from "../../../gen/tether/v1/alarm_pb.js";
import { deviceName } from "../devices/device-name.js";
import { ruleName } from "../rules/rule-name.js";
import { conditionVersion, type RuleRecord } from "../rules/rule-record.js";

export type AlarmState = "ACTIVE" | "CLEARED";

/** An alarm as the core and the store see it. */
export interface AlarmRecord {
  id: string;
  ruleId: string;
  deviceId: string;
  /** `AlarmSeverity` number. */
  severity: number;
  state: AlarmState;
  acknowledged: boolean;
  metric: string;
  description: string;
  /** The episode's start: part of the exactly-once key. */
  startTime: Date;
  raiseTime: Date;
  raiseValue: number;
  clearTime?: Date;
  clearValue?: number;
  acknowledger?: string;
  acknowledgeTime?: Date;
  acknowledgeComment: string;
  /** The policy it was raised with. */
  notifyOnClear: boolean;
  escalateAfterMs?: number;
  escalateTime?: Date;
  createTime: Date;
  updateTime: Date;
  revision: number;
}

/** What happened to an alarm; the names are the event types notification channels subscribe to. */
export type AlarmEventType = "alarm.raised" | "alarm.cleared" | "alarm.acknowledged" | "alarm.escalated";

/** One change of an alarm, after it committed: published to watchers, and (if the policy says so) notified. */
export interface AlarmChange {
  type: AlarmEventType;
  alarm: AlarmRecord;
}

const EVENT_TYPES: Record<AlarmEventType, AlarmEvent_Type> = {
  "alarm.raised": AlarmEvent_Type.RAISED,
  "alarm.cleared": AlarmEvent_Type.CLEARED,
  "alarm.acknowledged": AlarmEvent_Type.ACKNOWLEDGED,
  "alarm.escalated": AlarmEvent_Type.ESCALATED,
};

export function alarmName(id: string): string {
  return `alarms/${id}`;
}

/** Includes part of the id, so an etag of one alarm never matches another's. */
export function alarmEtag(a: Pick<AlarmRecord, "id" | "revision">): string {
  return `"${a.revision}-${a.id.slice(0, 8)}"`;
}

/** The public view of an alarm. */
export function toAlarmProto(a: AlarmRecord): Alarm {
  const ts = (d: Date | undefined) => (d ? timestampFromDate(d) : undefined);
  return create(AlarmSchema, {
    name: alarmName(a.id),
    rule: ruleName(a.ruleId),
    device: deviceName(a.deviceId),
    severity: a.severity,
    state: a.state === "ACTIVE" ? Alarm_State.ACTIVE : Alarm_State.CLEARED,
    acknowledged: a.acknowledged,
    metric: a.metric,
    description: a.description,
    startTime: ts(a.startTime),
    raiseTime: ts(a.raiseTime),
    raiseValue: a.raiseValue,
    clearTime: ts(a.clearTime),
    clearValue: a.clearValue ?? 0,
    acknowledger: a.acknowledger ?? "",
    acknowledgeTime: ts(a.acknowledgeTime),
    acknowledgeComment: a.acknowledgeComment,
    escalateTime: ts(a.escalateTime),
    createTime: ts(a.createTime),
    updateTime: ts(a.updateTime),
    etag: alarmEtag(a),
  });
}

export function toAlarmEventProto(c: AlarmChange): AlarmEvent {
  return create(AlarmEventSchema, { type: EVENT_TYPES[c.type], alarm: toAlarmProto(c.alarm) });
}

const DATE_FIELDS = ["startTime", "raiseTime", "clearTime", "acknowledgeTime", "escalateTime", "createTime", "updateTime"] as const;

/** An AlarmChange back from JSON (the cross-replica feed): its dates were strings. */
export function reviveAlarmChange(raw: AlarmChange): AlarmChange {
  const alarm = { ...raw.alarm } as AlarmRecord;
  for (const f of DATE_FIELDS) {
    const v = alarm[f] as Date | string | undefined;
    if (v !== undefined && v !== null) (alarm as unknown as Record<string, Date>)[f] = new Date(v);
  }
  return { type: raw.type, alarm };
}

/** What decides raising and clearing for an alarm rule: when it changes, evaluation starts over. */
export function alarmVersion(r: Pick<RuleRecord, "uid" | "trigger" | "target" | "startTime" | "endTime" | "alarm">): string {
  return JSON.stringify([conditionVersion(r), r.alarm?.clearThreshold ?? null, r.alarm?.clearForMs ?? null]);
}
