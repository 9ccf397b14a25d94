import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { AlarmSeverity } from "../../gen/tether/v1/alarm_pb.js";
import { EventTrigger_Comparison as Comparison, Rule_MisfirePolicy as MisfirePolicy, type RuleSchema } from "../../gen/tether/v1/rule_pb.js";
import type { Product } from "../core/products/index.js";
import { EXAMPLE_PRODUCT, KIND_CHOICES, productForAction, productNamed, productOf } from "./kinds.js";
import { commandFromArgs, parseDuration, priorityFromFlag } from "./task-args.js";

type RuleInit = MessageInitShape<typeof RuleSchema>;

/** Flags of `tether rules create` (and the schedule flags of `preview`). */
export const RULE_FLAGS = {
  cron: { type: "string" },
  tz: { type: "string" },
  at: { type: "string" },
  when: { type: "string" },
  for: { type: "string" },
  cooldown: { type: "string" },
  device: { type: "string" },
  selector: { type: "string" },
  "selector-filter": { type: "string" },
  command: { type: "string" },
  ttl: { type: "string" },
  priority: { type: "string" },
  misfire: { type: "string" },
  start: { type: "string" },
  end: { type: "string" },
  "display-name": { type: "string" },
  alarm: { type: "string" },
  "clear-at": { type: "string" },
  "clear-for": { type: "string" },
  description: { type: "string" },
  notify: { type: "string" },
  "escalate-after": { type: "string" },
} as const;

export interface RuleFlagValues {
  cron?: string;
  tz?: string;
  at?: string;
  when?: string;
  for?: string;
  cooldown?: string;
  device?: string;
  selector?: string;
  /** A fleet query the selector's devices must also match (LabelSelector.filter). */
  "selector-filter"?: string;
  command?: string;
  ttl?: string;
  priority?: string;
  misfire?: string;
  start?: string;
  end?: string;
  "display-name"?: string;
  alarm?: string;
  "clear-at"?: string;
  "clear-for"?: string;
  description?: string;
  notify?: string;
  "escalate-after"?: string;
}

const OPS: Record<string, Comparison> = {
  "<": Comparison.LT,
  "<=": Comparison.LE,
  ">": Comparison.GT,
  ">=": Comparison.GE,
  "==": Comparison.EQ,
  "=": Comparison.EQ,
  "!=": Comparison.NE,
};

/** `2025-06-01T07:30:00+02:00`, or `+30s` / `+2h` from now. */
export function parseTime(v: string, flag: string): Date {
  if (v.startsWith("+")) {
    const d = parseDuration(v.slice(1));
    return new Date(Date.now() + Number(d.seconds) * 1000 + d.nanos / 1e6);
  }
  const t = new Date(v);
  if (Number.isNaN(t.getTime())) throw new Error(`--${flag} ${v}: expected an ISO 8601 time (2025-06-01T07:30:00+02:00) or +30s, +2h`);
  return t;
}

/** `kind=<kind>,room=kitchen`, the form of --selector, with the first product as the example. */
export const SELECTOR_EXAMPLE = `kind=${EXAMPLE_PRODUCT.kindName},room=kitchen`;

/**
 * `kind=<kind>,room=kitchen` → the product (kind name or alias; undefined when the selector names
 * none, for the command's action to imply) and the labels.
 */
export function parseSelector(v: string): { product: Product | undefined; labels: Record<string, string> } {
  let product: Product | undefined;
  const labels: Record<string, string> = {};
  for (const part of v
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean)) {
    const i = part.indexOf("=");
    if (i <= 0) throw new Error(`--selector ${v}: expected ${SELECTOR_EXAMPLE},...`);
    const [k, val] = [part.slice(0, i), part.slice(i + 1)];
    if (k === "kind") {
      product = productNamed(val);
      if (!product) throw new Error(`--selector ${v}: kind=${val} is not a kind; expected ${KIND_CHOICES}`);
    } else labels[k] = val;
  }
  return { product, labels };
}

/** The trigger and window from flags: --cron [--tz], --at, or --when [--for] [--cooldown]. */
export function triggerFromFlags(v: RuleFlagValues): Pick<RuleInit, "trigger" | "startTime" | "endTime"> {
  const given = [v.cron, v.at, v.when].filter((x) => x !== undefined).length;
  if (given !== 1) throw new Error("set exactly one of --cron EXPR, --at TIME or --when 'METRIC < VALUE'");
  let trigger: RuleInit["trigger"];
  if (v.cron !== undefined) trigger = { case: "cron", value: { expression: v.cron, timeZone: v.tz ?? "" } };
  else if (v.at !== undefined) trigger = { case: "oneShotTime", value: timestampFromDate(parseTime(v.at, "at")) };
  else {
    const m = /^\s*([A-Za-z0-9_.-]+)\s*(<=|>=|==|!=|<|>|=)\s*(-?[\d.]+(?:e-?\d+)?)\s*$/i.exec(v.when!);
    if (!m) throw new Error(`--when ${v.when}: expected METRIC OP VALUE, e.g. 'water_level_percent < 10' (OP: < <= > >= == !=)`);
    trigger = {
      case: "eventTrigger",
      value: {
        metric: m[1]!,
        comparison: OPS[m[2]!]!,
        threshold: Number(m[3]),
        forDuration: v.for ? parseDuration(v.for) : undefined,
        cooldown: v.cooldown ? parseDuration(v.cooldown) : undefined,
      },
    };
  }
  return {
    trigger,
    startTime: v.start ? timestampFromDate(parseTime(v.start, "start")) : undefined,
    endTime: v.end ? timestampFromDate(parseTime(v.end, "end")) : undefined,
  };
}

/**
 * A whole Rule from flags. `deviceKind` resolves the kind of a --device target (the CLI asks the
 * server), so that `--command 'brightness 80'` can be built for the right product.
 */
export async function ruleFromFlags(v: RuleFlagValues, deviceKind: (device: string) => Promise<string>): Promise<RuleInit> {
  if ((v.device === undefined) === (v.selector === undefined)) throw new Error(`set exactly one of --device ID or --selector ${SELECTOR_EXAMPLE}`);
  if (v.alarm !== undefined) return alarmRuleFromFlags(v);
  for (const f of ALARM_ONLY) if (v[f] !== undefined) throw new Error(`--${f} is for alarm rules: add --alarm critical|major|minor|warning`);
  if (!v.command?.trim()) throw new Error(`--command is required, e.g. --command '${EXAMPLE_PRODUCT.words.example}'`);
  const taskPriority = priorityFromFlag(v.priority, "tether rules");
  const device = v.device === undefined ? undefined : v.device.startsWith("devices/") ? v.device : `devices/${v.device}`;
  const selector = v.selector === undefined ? undefined : parseSelector(v.selector);
  const [action = "", ...rest] = v.command.trim().split(/\s+/);
  // A selector without kind= targets the one kind whose commands have the action (when exactly one kind has it).
  const product = device
    ? productOf(await deviceKind(device))
    : (selector!.product ?? productForAction(action, (having) => `add kind=${having.map((p) => p.kindName).join("|")} to --selector`));
  const misfire = misfireFromFlag(v.misfire);
  return {
    displayName: v["display-name"] ?? "",
    ...triggerFromFlags(v),
    target: device
      ? { case: "device", value: device }
      : { case: "selector", value: { kind: product.productKind, labels: selector!.labels, ...(v["selector-filter"] ? { filter: v["selector-filter"] } : {}) } },
    command: commandFromArgs(product.kindName, action, rest.length > 0 ? rest.join(" ") : undefined),
    taskTtl: v.ttl ? parseDuration(v.ttl) : undefined,
    taskPriority,
    misfirePolicy: misfire,
  };
}

/** `--misfire skip|fire_once` (also `fire-once`); unset = the server's default. */
export function misfireFromFlag(flag: string | undefined): MisfirePolicy {
  if (flag === undefined) return MisfirePolicy.UNSPECIFIED;
  if (flag === "skip") return MisfirePolicy.SKIP;
  if (flag === "fire_once" || flag === "fire-once") return MisfirePolicy.FIRE_ONCE;
  throw new Error(`--misfire ${flag}: expected skip or fire_once`);
}

const ALARM_ONLY = ["clear-at", "clear-for", "description", "notify", "escalate-after"] as const;
const SEVERITIES: Record<string, AlarmSeverity> = {
  critical: AlarmSeverity.CRITICAL,
  major: AlarmSeverity.MAJOR,
  minor: AlarmSeverity.MINOR,
  warning: AlarmSeverity.WARNING,
};

/**
 * An alarm rule from flags: `--alarm SEVERITY --when 'METRIC OP VALUE' [--for D] [--clear-at V]
 * [--clear-for D] [--notify raise,clear|raise|clear|none] [--escalate-after D] [--description S]`.
 * It has no command, so a selector must name its kind.
 */
function alarmRuleFromFlags(v: RuleFlagValues): RuleInit {
  const severity = SEVERITIES[v.alarm!.toLowerCase()];
  if (severity === undefined) throw new Error(`--alarm ${v.alarm}: expected ${Object.keys(SEVERITIES).join(", ")}`);
  if (v.when === undefined) throw new Error("an alarm rule needs --when 'METRIC OP VALUE' (e.g. 'temperature_celsius > 30', or 'online == 0' for offline)");
  for (const f of ["command", "ttl", "priority", "cooldown"] as const) if (v[f] !== undefined) throw new Error(`--${f} does not apply to an alarm rule`);
  const selector = v.selector === undefined ? undefined : parseSelector(v.selector);
  if (selector && !selector.product) throw new Error(`--selector ${v.selector}: an alarm rule's selector needs kind=, e.g. ${SELECTOR_EXAMPLE}`);
  const device = v.device === undefined ? undefined : v.device.startsWith("devices/") ? v.device : `devices/${v.device}`;
  const clearAt = v["clear-at"] === undefined ? undefined : Number(v["clear-at"]);
  if (clearAt !== undefined && !Number.isFinite(clearAt)) throw new Error(`--clear-at ${v["clear-at"]}: expected a number`);
  const notify = (v.notify ?? "raise,clear").split(",").map((x) => x.trim());
  if (!notify.every((x) => ["raise", "clear", "none"].includes(x))) throw new Error(`--notify ${v.notify}: expected raise,clear, raise, clear or none`);
  return {
    displayName: v["display-name"] ?? "",
    ...triggerFromFlags(v),
    target: device
      ? { case: "device", value: device }
      : {
          case: "selector",
          value: { kind: selector!.product!.productKind, labels: selector!.labels, ...(v["selector-filter"] ? { filter: v["selector-filter"] } : {}) },
        },
    alarm: {
      severity,
      clearThreshold: clearAt,
      clearFor: v["clear-for"] ? parseDuration(v["clear-for"]) : undefined,
      description: v.description ?? "",
      notifyOnRaise: notify.includes("raise"),
      notifyOnClear: notify.includes("clear"),
      escalateAfter: v["escalate-after"] ? parseDuration(v["escalate-after"]) : undefined,
    },
  };
}
