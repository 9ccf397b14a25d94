import { parseArgs } from "node:util";
import { type Alarm, AlarmEvent_Type, AlarmSchema, AlarmSeverity, Alarm_State } from "../../gen/tether/v1/alarm_pb.js";
import { AlarmService, CountAlarmsResponseSchema, ListAlarmsResponseSchema } from "../../gen/tether/v1/alarm_service_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { AlarmFilterSchema } from "../../gen/tether/v1/alarm_service_pb.js";
import { connectClient } from "./client.js";
import { json, table, time } from "./format.js";

export const ALARMS_USAGE = `tether alarms <command> [flags]

  list [FILTER] [--page-size N] [--page-token T]     newest first
  get <id>
  ack <id> [--comment S] [--etag E]                  acknowledge (operator on the device)
  count [FILTER]                                     per severity
  watch [FILTER]                                     raised, cleared, acknowledged, escalated, live
      FILTER: --device ID --rule ID --severity critical|major|minor|warning
              --state active|cleared --acked yes|no
  Alarms are raised by alarm rules: tether rules create <id> --alarm major --when 'temperature_celsius > 30' ...

Global: --json (protobuf JSON output), --address https://host:port, --certs DIR`;

const SEVERITY: Record<string, AlarmSeverity> = {
  critical: AlarmSeverity.CRITICAL,
  major: AlarmSeverity.MAJOR,
  minor: AlarmSeverity.MINOR,
  warning: AlarmSeverity.WARNING,
};
const STATE: Record<string, Alarm_State> = { active: Alarm_State.ACTIVE, cleared: Alarm_State.CLEARED };

const alarmName = (id: string) => (id.startsWith("alarms/") ? id : `alarms/${id}`);
const prefixed = (what: string, id: string | undefined) => (id === undefined ? "" : id.startsWith(`${what}/`) ? id : `${what}/${id}`);

function pick<T>(table: Record<string, T>, flag: string, v: string | undefined): T | undefined {
  if (v === undefined) return undefined;
  const x = table[v.toLowerCase()];
  if (x === undefined) throw new Error(`--${flag} ${v}: expected ${Object.keys(table).join(", ")}`);
  return x;
}

/** `tether alarms ...` */
export async function alarmsCommand(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  const { values: v, positionals: p } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      device: { type: "string" },
      rule: { type: "string" },
      severity: { type: "string" },
      state: { type: "string" },
      acked: { type: "string" },
      comment: { type: "string" },
      etag: { type: "string" },
      json: { type: "boolean" },
      address: { type: "string" },
      certs: { type: "string" },
      "page-size": { type: "string" },
      "page-token": { type: "string" },
    },
  });
  if (v.acked !== undefined && !["yes", "no"].includes(v.acked)) throw new Error(`--acked ${v.acked}: expected yes or no`);
  const filter: MessageInitShape<typeof AlarmFilterSchema> = {
    device: prefixed("devices", v.device),
    rule: prefixed("rules", v.rule),
    severity: pick(SEVERITY, "severity", v.severity),
    state: pick(STATE, "state", v.state),
    acknowledged: v.acked === undefined ? undefined : v.acked === "yes",
  };
  const client = connectClient(AlarmService, { address: v.address, certsDir: v.certs });
  const id = () => {
    if (!p[0]) throw new Error(`tether alarms ${sub}: missing alarm id\n\n${ALARMS_USAGE}`);
    return alarmName(p[0]);
  };
  const out = (a: Alarm) => console.log(v.json ? json(AlarmSchema, a) : describe(a));
  switch (sub) {
    case "list": {
      const res = await client.listAlarms({ filter, pageSize: Number(v["page-size"] ?? 0), pageToken: v["page-token"] ?? "" });
      if (v.json) return console.log(json(ListAlarmsResponseSchema, res));
      console.log(
        table(
          ["ALARM", "SEVERITY", "STATE", "ACKED", "DEVICE", "RULE", "RAISED", "CLEARED"],
          res.alarms.map((a) => [
            a.name.slice("alarms/".length),
            AlarmSeverity[a.severity] ?? "?",
            Alarm_State[a.state] ?? "?",
            a.acknowledged ? "yes" : "-",
            a.device.slice("devices/".length),
            a.rule.slice("rules/".length),
            time(a.raiseTime),
            time(a.clearTime),
          ]),
        ),
      );
      if (res.nextPageToken) console.log(`\nmore: --page-token ${res.nextPageToken}`);
      return;
    }
    case "get":
      return out(await client.getAlarm({ name: id() }));
    case "ack":
      return out(await client.acknowledgeAlarm({ name: id(), comment: v.comment ?? "", etag: v.etag ?? "" }));
    case "count": {
      // Counts are per severity: --severity would only hide the other rows.
      const res = await client.countAlarms({ filter: { ...filter, severity: undefined } });
      if (v.json) return console.log(json(CountAlarmsResponseSchema, res));
      console.log(table(["SEVERITY", "COUNT"], [...res.counts.map((c) => [AlarmSeverity[c.severity] ?? "?", String(c.count)]), ["total", String(res.total)]]));
      return;
    }
    case "watch": {
      for await (const r of client.watchAlarms({ filter })) {
        const e = r.event!;
        const a = e.alarm!;
        if (v.json) console.log(JSON.stringify({ type: AlarmEvent_Type[e.type], alarm: JSON.parse(json(AlarmSchema, a)) }));
        else console.log(`${time(a.updateTime)}  ${AlarmEvent_Type[e.type]}  ${AlarmSeverity[a.severity]}  ${a.device}  ${a.rule}  ${a.name}`);
      }
      return;
    }
    default:
      throw new Error(ALARMS_USAGE);
  }
}

function describe(a: Alarm): string {
  return table(
    ["FIELD", "VALUE"],
    [
      ["name", a.name],
      ["severity", AlarmSeverity[a.severity] ?? "?"],
      ["state", Alarm_State[a.state] ?? "?"],
      ["acknowledged", a.acknowledged ? `yes, by ${a.acknowledger} at ${time(a.acknowledgeTime)}` : "no"],
      ["comment", a.acknowledgeComment || "-"],
      ["device", a.device],
      ["rule", a.rule],
      ["metric", a.metric],
      ["description", a.description || "-"],
      ["start_time", time(a.startTime)],
      ["raised", `${time(a.raiseTime)} (value ${a.raiseValue})`],
      ["cleared", a.clearTime ? `${time(a.clearTime)} (value ${a.clearValue})` : "-"],
      ["escalated", time(a.escalateTime)],
      ["etag", a.etag],
    ],
  );
}
