import type { Rule } from "../../../gen/tether/v1/rule_pb.js";
import { InvalidArgumentError, Violations } from "../errors.js";

const OUTPUT_ONLY = new Set(["name", "uid", "paused", "next_fire_time", "last_fire_time", "create_time", "update_time", "etag", "creator"]);
const EVENT_FIELDS = { metric: "metric", comparison: "comparison", threshold: "threshold", for_duration: "forDuration", cooldown: "cooldown" } as const;
/** Paths that change when the rule fires: the rule is rescheduled from now. */
const SCHEDULE_PATHS = /^(cron|one_shot_time|event_trigger|start_time|end_time)(\.|$)/;
const UPDATABLE =
  "display_name, cron[.expression|.time_zone], one_shot_time, event_trigger[.field], start_time, end_time, device, selector[.kind|.labels|.filter], job, command, task_ttl, task_priority, misfire_policy, alarm";

/**
 * Applies an UpdateRule mask (AIP-134) from `input` onto `target` (a copy of the stored rule).
 * Naming one case of a oneof (`cron`) replaces whichever case was set. An empty mask means every
 * updatable field set in `input`. Unknown and output-only paths are InvalidArgument.
 * Returns whether the rule must be rescheduled.
 */
export function applyRuleMask(paths: string[], input: Rule, target: Rule): { reschedule: boolean } {
  if (paths.length === 0) paths = impliedPaths(input);
  if (paths.length === 0) throw InvalidArgumentError.field("update_mask", "names no field and the request sets no updatable field");
  const v = new Violations();
  const bad = (path: string, why: string) => v.add("update_mask.paths", `"${path.slice(0, 80)}": ${why}`);
  for (const path of paths) {
    const [head, sub] = splitPath(path);
    if (OUTPUT_ONLY.has(path)) {
      bad(path, path === "paused" ? "is output only; use PauseRule or ResumeRule" : "is output only");
      continue;
    }
    switch (head) {
      case "display_name":
        if (sub) bad(path, "has no subfields");
        else target.displayName = input.displayName;
        break;
      case "start_time":
      case "end_time":
        if (sub) bad(path, "has no subfields");
        else if (head === "start_time") target.startTime = input.startTime;
        else target.endTime = input.endTime;
        break;
      case "task_ttl":
        target.taskTtl = input.taskTtl;
        break;
      case "task_priority":
        // Unset in the request resets it to the default, as for task_ttl.
        if (sub) bad(path, "has no subfields");
        else target.taskPriority = input.taskPriority;
        break;
      case "misfire_policy":
        target.misfirePolicy = input.misfirePolicy;
        break;
      case "command":
        if (!input.command) bad(path, "rule.command is not set");
        else target.command = input.command;
        break;
      case "cron":
        if (input.trigger.case !== "cron") bad(path, "rule.cron is not set");
        else if (!sub) target.trigger = input.trigger;
        else if (target.trigger.case !== "cron") bad(path, "the rule has no cron schedule; update cron as a whole");
        else if (sub === "expression") target.trigger.value.expression = input.trigger.value.expression;
        else if (sub === "time_zone") target.trigger.value.timeZone = input.trigger.value.timeZone;
        else bad(path, "CronSchedule has expression and time_zone");
        break;
      case "one_shot_time":
        if (input.trigger.case !== "oneShotTime") bad(path, "rule.one_shot_time is not set");
        else target.trigger = input.trigger;
        break;
      case "event_trigger":
        if (input.trigger.case !== "eventTrigger") bad(path, "rule.event_trigger is not set");
        else if (!sub) target.trigger = input.trigger;
        else if (target.trigger.case !== "eventTrigger") bad(path, "the rule has no event trigger; update event_trigger as a whole");
        else if (sub in EVENT_FIELDS) {
          const f = EVENT_FIELDS[sub as keyof typeof EVENT_FIELDS];
          (target.trigger.value as unknown as Record<string, unknown>)[f] = (input.trigger.value as unknown as Record<string, unknown>)[f];
        } else bad(path, `EventTrigger has ${Object.keys(EVENT_FIELDS).join(", ")}`);
        break;
      case "alarm":
        // Replaced as a whole; that a task rule does not become an alarm rule is the service's check.
        if (!input.alarm) bad(path, "rule.alarm is not set");
        else if (sub) bad(path, "update alarm as a whole");
        else target.alarm = input.alarm;
        break;
      case "device":
        if (input.target.case !== "device") bad(path, "rule.device is not set");
        else target.target = input.target;
        break;
      case "job":
        if (input.target.case !== "job") bad(path, "rule.job is not set");
        else if (sub) bad(path, "update job as a whole");
        else target.target = input.target;
        break;
      case "selector":
        if (input.target.case !== "selector") bad(path, "rule.selector is not set");
        else if (!sub) target.target = input.target;
        else if (target.target.case !== "selector") bad(path, "the rule has no selector; update selector as a whole");
        else if (sub === "kind") target.target.value.kind = input.target.value.kind;
        else if (sub === "labels") target.target.value.labels = { ...input.target.value.labels };
        else if (sub === "filter") target.target.value.filter = input.target.value.filter;
        else bad(path, "LabelSelector has kind, labels and filter");
        break;
      default:
        bad(path, `is not an updatable field (${UPDATABLE})`);
    }
  }
  v.throwIfAny();
  return { reschedule: paths.some((p) => SCHEDULE_PATHS.test(p)) };
}

function splitPath(path: string): [string, string | undefined] {
  const i = path.indexOf(".");
  return i < 0 ? [path, undefined] : [path.slice(0, i), path.slice(i + 1)];
}

function impliedPaths(input: Rule): string[] {
  const paths: string[] = [];
  if (input.displayName !== "") paths.push("display_name");
  if (input.trigger.case === "cron") paths.push("cron");
  if (input.trigger.case === "oneShotTime") paths.push("one_shot_time");
  if (input.trigger.case === "eventTrigger") paths.push("event_trigger");
  if (input.startTime) paths.push("start_time");
  if (input.endTime) paths.push("end_time");
  if (input.target.case === "device") paths.push("device");
  if (input.target.case === "selector") paths.push("selector");
  if (input.target.case === "job") paths.push("job");
  if (input.command) paths.push("command");
  if (input.taskTtl) paths.push("task_ttl");
  if (input.taskPriority !== undefined) paths.push("task_priority");
  if (input.misfirePolicy !== 0) paths.push("misfire_policy");
  if (input.alarm) paths.push("alarm");
  return paths;
}
