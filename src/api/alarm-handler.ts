import type { ServiceImpl } from "@connectrpc/connect";
import type { AlarmService as AlarmServiceDesc } from "../../gen/tether/v1/alarm_service_pb.js";
import { toAlarmEventProto } from "../core/alarms/alarm-record.js";
import type { AlarmService } from "../core/alarms/alarm-service.js";
import { accessOf, kCutOff } from "./auth.js";

/** AlarmService over Connect/gRPC: a thin shell; filters, rights and the lifecycle live in the core. */
export function alarmHandler(alarms: AlarmService): ServiceImpl<typeof AlarmServiceDesc> {
  return {
    getAlarm: (req, ctx) => alarms.getAlarm(accessOf(ctx), req.name),
    listAlarms: (req, ctx) => alarms.listAlarms(accessOf(ctx), req),
    acknowledgeAlarm: (req, ctx) => alarms.acknowledgeAlarm(accessOf(ctx), req),
    countAlarms: (req, ctx) => alarms.countAlarms(accessOf(ctx), req),
    async *watchAlarms(req, ctx) {
      for await (const change of alarms.watchAlarms(accessOf(ctx), req.filter, ctx.signal, ctx.values.get(kCutOff))) {
        yield { event: toAlarmEventProto(change) };
      }
    },
  };
}
