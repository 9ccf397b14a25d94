import { AlarmService } from "../../gen/tether/v1/alarm_service_pb.js";
import { AuditService } from "../../gen/tether/v1/audit_service_pb.js";
import { toolInput } from "./json-schema.js";
import { methodTool, type ToolDef } from "./tool.js";

const alarms = AlarmService.method;
const audit = AuditService.method;

/** Alarms (list, acknowledge) and the audit log. */
export const alarmAuditTools: ToolDef[] = [
  methodTool(alarms.listAlarms, {
    name: "list_alarms",
    description: "List alarms, newest first; filter by device, severity, state, acknowledged or rule.",
    inputSchema: toolInput(alarms.listAlarms.input, { pick: ["filter", "page_size", "page_token"] }),
    annotations: { title: "List alarms", readOnlyHint: true },
  }),
  methodTool(alarms.acknowledgeAlarm, {
    name: "acknowledge_alarm",
    description: "Acknowledge an alarm (`alarms/{alarm}`) with an optional comment: someone is on it.",
    inputSchema: toolInput(alarms.acknowledgeAlarm.input, { pick: ["name", "comment", "etag"], required: ["name"] }),
    annotations: { title: "Acknowledge an alarm", idempotentHint: true, destructiveHint: false },
  }),
  methodTool(audit.listAuditEvents, {
    name: "list_audit_events",
    description: "Read the audit log, newest first: who changed what, when, with what outcome; filter by principal, resource, method, via or time.",
    inputSchema: toolInput(audit.listAuditEvents.input, {
      pick: ["principal", "resource", "method", "via", "start_time", "end_time", "page_size", "page_token"],
    }),
    annotations: { title: "Read the audit log", readOnlyHint: true },
  }),
];
