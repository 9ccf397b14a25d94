import { type JsonValue, toJson } from "@bufbuild/protobuf";
import { AlarmSchema } from "../../gen/tether/v1/alarm_pb.js";
import { toAlarmProto } from "../core/alarms/alarm-record.js";
import type { AlarmNotifications } from "../core/ports/alarm-notifications.js";
import type { Sql } from "./database.js";
import type { TxSql } from "./transaction.js";

/**
 * AlarmNotifications as rows of `alarm_notifications`, written on the alarm change's own
 * transaction. Its unique key (alarm, type) makes a second notification of the same kind for one
 * alarm impossible, whatever a caller does: the policy "no repeat" holds in the database.
 */
export function alarmNotificationTable(): AlarmNotifications<TxSql> {
  return {
    async enqueue(tx, changes, now) {
      if (changes.length === 0) return;
      const rows = changes.map((c) => ({
        alarm_id: c.alarm.id,
        type: c.type,
        alarm: toJson(AlarmSchema, toAlarmProto(c.alarm)) as JsonValue,
      }));
      await tx`
        INSERT INTO alarm_notifications (alarm_id, type, alarm, create_time)
        SELECT v.alarm_id, v.type, v.alarm, ${now} FROM jsonb_to_recordset(${tx.json(rows)}) AS v(alarm_id uuid, type text, alarm jsonb)
        ON CONFLICT (alarm_id, type) DO NOTHING`;
    },
  };
}

/** The recorded notifications, oldest first (tests, and the CLI until the webhook outbox delivers them). */
export async function listAlarmNotifications(sql: Sql, alarmId?: string): Promise<Array<{ alarmId: string; type: string; createTime: Date }>> {
  const rows = await sql`
    SELECT alarm_id, type, create_time FROM alarm_notifications
    WHERE ${alarmId ? sql`alarm_id = ${alarmId}` : sql`true`} ORDER BY id`;
  return rows.map((r) => ({ alarmId: String(r.alarm_id), type: String(r.type), createTime: r.create_time as Date }));
}
