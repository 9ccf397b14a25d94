import { parseArgs } from "node:util";
import { durationMs, timestampDate } from "@bufbuild/protobuf/wkt";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import type { Duration } from "@bufbuild/protobuf/wkt";
import { type AlarmSpec, AlarmSeverity } from "../../gen/tether/v1/alarm_pb.js";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { EventTrigger_Comparison as Comparison, type Rule, Rule_MisfirePolicy, RuleRun_State, RuleSchema } from "../../gen/tether/v1/rule_pb.js";
import { ListRuleRunsResponseSchema, ListRulesResponseSchema, RuleService } from "../../gen/tether/v1/rule_service_pb.js";
import { Task_State } from "../../gen/tether/v1/task_pb.js";
import { productByCase, PRODUCTS } from "../core/products/index.js";
import { deletedText, exists } from "./allow-missing.js";
import { connectClient } from "./client.js";
import { commandText, json, priorityText, table, time } from "./format.js";
import { IMPLIED_KIND_EXAMPLE } from "./kinds.js";
import { RULE_FLAGS, type RuleFlagValues, ruleFromFlags, SELECTOR_EXAMPLE, triggerFromFlags } from "./rule-args.js";
import { PRIORITY_HELP, priorityFromFlag, TASK_ACTIONS } from "./task-args.js";

export const RULES_USAGE = `tether rules <command> [flags]

  create <id> WHEN TARGET --command 'ACTION [VALUE]' [--ttl 1h] [--priority N] [--misfire skip|fire_once]
         [--start TIME] [--end TIME] [--display-name S]
         ${PRIORITY_HELP} (of each task it creates)
      WHEN:   --cron 'S M H DOM MON DOW' [--tz Europe/Paris]   (seconds optional: 5 or 6 fields)
              --at 2025-06-01T07:30:00+02:00 | --at +30s      (once)
              --when 'water_level_percent < 10' [--for 30s] [--cooldown 5m]   (reported state or telemetry)
      TARGET: --device kitchen-1 | --selector ${SELECTOR_EXAMPLE}   (without kind=, the one kind with the
              command's action: '${IMPLIED_KIND_EXAMPLE}' needs none)
              [--selector-filter EXPR]: devices must also match this fleet query (see devices --help)
      ACTION: ${TASK_ACTIONS.replace(/\n/g, "\n              ")}
  create <id> --alarm critical|major|minor|warning --when 'METRIC OP VALUE' [--for 2m] TARGET
         [--clear-at VALUE] [--clear-for 1m] [--notify raise,clear|raise|clear|none] [--escalate-after 30m]
         [--description S]      an alarm rule: raises an alarm (tether alarms) instead of creating tasks;
         --when 'online == 0' --for 10m is "offline for 10 minutes"; a --selector needs kind=.
  list [--page-size N] [--page-token T]
  get <id>
  preview <id> [--count N]  |  preview --cron EXPR [--tz ZONE] [--start T] [--end T] [--count N]
  pause <id>
  resume <id>
  runs <id> [--page-size N] [--page-token T]
  delete <id> [--etag E] [--allow-missing]

Global: --json (protobuf JSON output), --address https://host:port, --certs DIR`;

const ruleName = (id: string) => (id.startsWith("rules/") ? id : `rules/${id}`);

/** `tether rules ...` */
export async function rulesCommand(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  const { values: v, positionals: p } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      ...RULE_FLAGS,
      json: { type: "boolean" },
      address: { type: "string" },
      certs: { type: "string" },
      count: { type: "string" },
      "page-size": { type: "string" },
      "page-token": { type: "string" },
      etag: { type: "string" },
      "allow-missing": { type: "boolean" },
    },
  });
  priorityFromFlag(v.priority, "tether rules"); // before any I/O: a usage error either way
  const opts = { address: v.address, certsDir: v.certs };
  const client = connectClient(RuleService, opts);
  const out = (r: Rule) => console.log(v.json ? json(RuleSchema, r) : describe(r));
  const id = (what = "rule id") => {
    if (!p[0]) throw new Error(`tether rules ${sub}: missing ${what}\n\n${RULES_USAGE}`);
    return ruleName(p[0]);
  };
  switch (sub) {
    case "create": {
      const ruleId = id().slice("rules/".length);
      const devices = connectClient(DeviceService, opts);
      const rule = await ruleFromFlags(v as RuleFlagValues, async (name) => productByCase((await devices.getDevice({ name })).kind.case!).kindName);
      return out(await client.createRule({ ruleId, rule }));
    }
    case "get":
      return out(await client.getRule({ name: id() }));
    case "list": {
      const res = await client.listRules({ pageSize: Number(v["page-size"] ?? 0), pageToken: v["page-token"] ?? "" });
      if (v.json) return console.log(json(ListRulesResponseSchema, res));
      console.log(
        table(
          ["RULE", "WHEN", "TARGET", "COMMAND", "NEXT FIRE", "PAUSED"],
          res.rules.map((r) => [
            r.name.slice(6),
            whenText(r),
            targetText(r),
            r.alarm ? `alarm ${AlarmSeverity[r.alarm.severity] ?? "?"}` : commandText(r.command),
            nextFireText(r),
            r.paused ? "yes" : "-",
          ]),
        ),
      );
      if (res.nextPageToken) console.log(`\nmore: --page-token ${res.nextPageToken}`);
      return;
    }
    case "preview": {
      const count = Number(v.count ?? 0);
      const res = p[0] ? await client.previewRule({ name: id(), count }) : await client.previewRule({ rule: triggerFromFlags(v as RuleFlagValues), count });
      if (v.json) return console.log(JSON.stringify({ fireTimes: res.fireTimes.map((t) => time(t)), timeZone: res.timeZone }, null, 2));
      console.log(
        table(
          ["FIRE TIME (UTC)", `LOCAL (${res.timeZone})`],
          res.fireTimes.map((t) => [time(t), localTime(t, res.timeZone)]),
        ),
      );
      return;
    }
    case "pause":
      return out(await client.pauseRule({ name: id() }));
    case "resume":
      return out(await client.resumeRule({ name: id() }));
    case "runs": {
      const res = await client.listRuleRuns({ parent: id(), pageSize: Number(v["page-size"] ?? 0), pageToken: v["page-token"] ?? "" });
      if (v.json) return console.log(json(ListRuleRunsResponseSchema, res));
      console.log(
        table(
          ["RUN", "OCCURRENCE", "FIRED", "STATE", "TASKS", "REASON"],
          res.runs.map((r) => [
            r.name.split("/").at(-1)!,
            time(r.occurrenceTime),
            time(r.fireTime),
            RuleRun_State[r.state],
            r.job || taskSummary(r.targets),
            r.stateReason,
          ]),
        ),
      );
      if (res.nextPageToken) console.log(`\nmore: --page-token ${res.nextPageToken}`);
      return;
    }
    case "delete": {
      const found = !v["allow-missing"] || (await exists(() => client.getRule({ name: id() })));
      await client.deleteRule({ name: id(), etag: v.etag ?? "", allowMissing: v["allow-missing"] ?? false });
      console.log(deletedText(id(), found));
      return;
    }
    default:
      throw new Error(RULES_USAGE);
  }
}

/** Counts of the run's tasks by current state, e.g. `SUCCEEDED 2, QUEUED 1`. */
function taskSummary(targets: Array<{ task: string; taskState: Task_State; error: string }>): string {
  if (targets.length === 0) return "-";
  const counts = new Map<string, number>();
  for (const t of targets) {
    const k = t.task ? (t.taskState ? Task_State[t.taskState] : "DELETED") : "NOT CREATED";
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return [...counts].map(([k, n]) => `${k} ${n}`).join(", ");
}

/** `Mon 2025-03-31 07:30:00 CEST`: the wall-clock time in the rule's zone. */
function localTime(ts: Timestamp | undefined, timeZone: string): string {
  if (!ts) return "-";
  const parts = new Intl.DateTimeFormat("en-GB", {
    timeZone,
    weekday: "short",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hourCycle: "h23",
    timeZoneName: "short",
  }).formatToParts(timestampDate(ts));
  const p = Object.fromEntries(parts.map((x) => [x.type, x.value]));
  return `${p.weekday} ${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second} ${p.timeZoneName}`;
}

/** 90 → `1m30s`, 604800 → `7d`. */
function seconds(total: number): string {
  const units: Array<[string, number]> = [
    ["d", 86_400],
    ["h", 3600],
    ["m", 60],
    ["s", 1],
  ];
  let rest = Math.round(total);
  const out = units.flatMap(([u, n]) => {
    const q = Math.floor(rest / n);
    rest -= q * n;
    return q > 0 ? [`${q}${u}`] : [];
  });
  return out.join("") || "0s";
}

function whenText(r: Rule): string {
  const t = r.trigger;
  if (t.case === "cron") return `cron "${t.value.expression}" ${t.value.timeZone}`;
  if (t.case === "oneShotTime") return `at ${time(t.value)}`;
  if (t.case === "eventTrigger") {
    const e = t.value;
    const op =
      { [Comparison.LT]: "<", [Comparison.LE]: "<=", [Comparison.GT]: ">", [Comparison.GE]: ">=", [Comparison.EQ]: "==", [Comparison.NE]: "!=" }[
        e.comparison as number
      ] ?? "?";
    const forText = e.forDuration ? ` for ${seconds(durationMs(e.forDuration) / 1000)}` : "";
    const cooldown = e.cooldown && !r.alarm ? `, cooldown ${seconds(durationMs(e.cooldown) / 1000)}` : "";
    return `when ${e.metric} ${op} ${e.threshold}${forText}${cooldown}`;
  }
  return "-";
}

/** The list's NEXT FIRE: none while paused (resuming reschedules from then), `done` for a one-shot that has had its time. */
function nextFireText(r: Rule): string {
  if (r.paused) return "-";
  if (r.trigger.case === "oneShotTime" && !r.nextFireTime) return "done";
  return time(r.nextFireTime);
}

function targetText(r: Rule): string {
  const t = r.target;
  if (t.case === "device") return t.value;
  if (t.case === "selector")
    return `${PRODUCTS.find((p) => p.productKind === t.value.kind)?.kindName ?? "?"} ${Object.entries(t.value.labels)
      .map(([k, x]) => `${k}=${x}`)
      .join(",")}${t.value.filter ? ` matching ${t.value.filter}` : ""}`;
  if (t.case === "job") {
    const jt = t.value.target;
    return `a job over ${jt.case === "selector" ? jt.value.filter : jt.case === "devices" ? `${jt.value.devices.length} device(s)` : "?"}`;
  }
  return "-";
}

/** An alarm rule's own fields in `rules get`. */
function alarmRows(a: AlarmSpec): string[][] {
  const d = (x: Duration | undefined) => (x ? seconds(durationMs(x) / 1000) : "-");
  const notify = [a.notifyOnRaise !== false ? "raise" : "", a.notifyOnClear !== false ? "clear" : ""].filter(Boolean).join(",") || "none";
  return [
    ["alarm", AlarmSeverity[a.severity] ?? "?"],
    ["clear_threshold", a.clearThreshold === undefined ? "-" : String(a.clearThreshold)],
    ["clear_for", d(a.clearFor)],
    ["notify", notify],
    ["escalate_after", d(a.escalateAfter)],
    ["description", a.description || "-"],
  ];
}

function describe(r: Rule): string {
  return table(
    ["FIELD", "VALUE"],
    [
      ["name", r.name],
      ["display_name", r.displayName || "-"],
      ["when", whenText(r)],
      ["start_time", time(r.startTime)],
      ["end_time", time(r.endTime)],
      ["target", targetText(r)],
      ["command", commandText(r.target.case === "job" ? r.target.value.command : r.command)],
      ...(r.alarm ? alarmRows(r.alarm) : []),
      ["task_ttl", r.taskTtl ? seconds(durationMs(r.taskTtl) / 1000) : "-"],
      ["task_priority", priorityText(r.target.case === "job" ? r.target.value.taskPriority : r.taskPriority)],
      ["misfire_policy", Rule_MisfirePolicy[r.misfirePolicy] ?? "-"],
      ["paused", r.paused ? "yes" : "no"],
      [
        "next_fire_time",
        r.nextFireTime ? `${time(r.nextFireTime)}${r.trigger.case === "cron" ? `  (${localTime(r.nextFireTime, r.trigger.value.timeZone)})` : ""}` : "-",
      ],
      ["last_fire_time", time(r.lastFireTime)],
      ["etag", r.etag],
    ],
  );
}
