import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { DeviceSelector_Mode as Mode, type JobSchema } from "../../gen/tether/v1/job_pb.js";
import { parseDeviceFilter, pinnedKind } from "../core/devices/device-filter.js";
import { EXAMPLE_PRODUCT, productForAction, productOf } from "./kinds.js";
import { parseTime } from "./rule-args.js";
import { commandFromArgs, parseDuration, priorityFromFlag } from "./task-args.js";

type JobInit = MessageInitShape<typeof JobSchema>;

/** Flags of `tether jobs create`. */
export const JOB_FLAGS = {
  selector: { type: "string" },
  continuous: { type: "boolean" },
  devices: { type: "string" },
  kind: { type: "string" },
  command: { type: "string" },
  rate: { type: "string" },
  "exp-base": { type: "string" },
  "exp-factor": { type: "string" },
  "exp-every": { type: "string" },
  "abort-percent": { type: "string" },
  "abort-min": { type: "string" },
  "abort-cancel": { type: "boolean" },
  timeout: { type: "string" },
  "max-attempts": { type: "string" },
  ttl: { type: "string" },
  priority: { type: "string" },
  start: { type: "string" },
  "display-name": { type: "string" },
} as const;

export interface JobFlagValues {
  selector?: string;
  continuous?: boolean;
  devices?: string;
  kind?: string;
  command?: string;
  rate?: string;
  "exp-base"?: string;
  "exp-factor"?: string;
  "exp-every"?: string;
  "abort-percent"?: string;
  "abort-min"?: string;
  "abort-cancel"?: boolean;
  timeout?: string;
  "max-attempts"?: string;
  ttl?: string;
  priority?: string;
  start?: string;
  "display-name"?: string;
}

function num(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${flag} ${v}: expected a non-negative number`);
  return n;
}

/**
 * A Job from flags. The command is built for the product kind of `--kind`, of the selector's `kind`
 * term, or (for --devices) of the first device, which `deviceKind` asks the server for; failing
 * those, for the one kind whose commands have the action word (`brightness 20` when one kind alone has `brightness`).
 */
export async function jobFromFlags(v: JobFlagValues, deviceKind: (device: string) => Promise<string>): Promise<JobInit> {
  if ((v.selector === undefined) === (v.devices === undefined)) throw new Error("set exactly one of --selector FILTER or --devices a,b,c");
  if (!v.command?.trim()) throw new Error(`--command is required, e.g. --command '${EXAMPLE_PRODUCT.words.example}'`);
  const taskPriority = priorityFromFlag(v.priority, "tether jobs");
  const names = v.devices
    ?.split(",")
    .map((d) => d.trim())
    .filter(Boolean)
    .map((d) => (d.startsWith("devices/") ? d : `devices/${d}`));
  const [action = "", ...rest] = v.command.trim().split(/\s+/);
  let kind = v.kind === undefined ? undefined : productOf(v.kind).kindName;
  if (!kind && v.selector !== undefined) kind = pinnedKind(parseDeviceFilter(v.selector, "--selector"));
  if (!kind && names && names[0]) kind = await deviceKind(names[0]);
  kind ??= productForAction(
    action,
    (having) => `the selector names no kind: add kind = "${having[0]!.kindName}" to it, or --kind ${having.map((p) => p.kindName).join("|")}`,
  ).kindName;
  const expBase = num(v["exp-base"], "exp-base");
  const abortPercent = num(v["abort-percent"], "abort-percent");
  return {
    displayName: v["display-name"] ?? "",
    command: commandFromArgs(kind, action, rest.length > 0 ? rest.join(" ") : undefined),
    target: names
      ? { case: "devices", value: { devices: names } }
      : { case: "selector", value: { filter: v.selector!, mode: v.continuous ? Mode.CONTINUOUS : Mode.SNAPSHOT } },
    rollout: {
      maxPerMinute: num(v.rate, "rate") ?? 0,
      exponential:
        expBase === undefined
          ? undefined
          : { basePerMinute: expBase, incrementFactor: num(v["exp-factor"], "exp-factor") ?? 2, successesPerStep: num(v["exp-every"], "exp-every") ?? 0 },
    },
    abortCriteria:
      abortPercent === undefined
        ? undefined
        : { failureThresholdPercent: abortPercent, minFinishedExecutions: num(v["abort-min"], "abort-min") ?? 0, cancelInFlight: v["abort-cancel"] ?? false },
    executionTimeout: v.timeout ? parseDuration(v.timeout) : undefined,
    maxAttempts: num(v["max-attempts"], "max-attempts") ?? 0,
    taskTtl: v.ttl ? parseDuration(v.ttl) : undefined,
    taskPriority,
    startTime: v.start ? timestampFromDate(parseTime(v.start, "start")) : undefined,
  };
}
