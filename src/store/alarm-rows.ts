import type { AlarmRecord, AlarmState } from "../core/alarms/alarm-record.js";

// How alarms look in PostgreSQL, and the mapping to the core's records.

export interface AlarmRow {
  id: string;
  rule_id: string;
  device_id: string;
  severity: number;
  state: string;
  acknowledged: boolean;
  metric: string;
  description: string;
  start_time: Date;
  raise_time: Date;
  raise_value: number;
  clear_time: Date | null;
  clear_value: number | null;
  acknowledger: string | null;
  acknowledge_time: Date | null;
  acknowledge_comment: string;
  notify_on_clear: boolean;
  escalate_after_ms: string | number | null;
  escalate_time: Date | null;
  create_time: Date;
  update_time: Date;
  revision: string | number;
}

export function fromAlarmRow(r: AlarmRow): AlarmRecord {
  return {
    id: String(r.id),
    ruleId: r.rule_id,
    deviceId: r.device_id,
    severity: Number(r.severity),
    state: r.state as AlarmState,
    acknowledged: r.acknowledged,
    metric: r.metric,
    description: r.description,
    startTime: r.start_time,
    raiseTime: r.raise_time,
    raiseValue: Number(r.raise_value),
    clearTime: r.clear_time ?? undefined,
    clearValue: r.clear_value ?? undefined,
    acknowledger: r.acknowledger ?? undefined,
    acknowledgeTime: r.acknowledge_time ?? undefined,
    acknowledgeComment: r.acknowledge_comment,
    notifyOnClear: r.notify_on_clear,
    escalateAfterMs: r.escalate_after_ms === null ? undefined : Number(r.escalate_after_ms),
    escalateTime: r.escalate_time ?? undefined,
    createTime: r.create_time,
    updateTime: r.update_time,
    revision: Number(r.revision),
  };
}
