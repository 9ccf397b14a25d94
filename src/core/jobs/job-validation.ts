import { durationMs, timestampDate } from "@bufbuild/protobuf/wkt";
import { DeviceSelector_Mode, type Job } from "../../../gen/tether/v1/job_pb.js";
import { allOf, parseDeviceFilter, pinnedKind } from "../devices/device-filter.js";
import { parseDeviceName } from "../devices/device-name.js";
import { InvalidArgumentError, type Violations } from "../errors.js";
import { kindNameList, productByCase } from "../products/index.js";
import { checkCommand } from "../rules/rule-validation.js";
import { parsePriority } from "../tasks/task-record.js";
import { TASK_DEFAULTS } from "../tasks/task-request.js";
import type { AbortSpec, JobSpec, JobTarget, RolloutSpec } from "./job-record.js";

const DAY = 86_400_000;
export const JOB_LIMITS = { maxDevices: 10_000, maxPerMinute: 10_000_000, maxFactor: 5, minFactor: 1.1 };

/**
 * Validates a Job from CreateJob and returns its spec, adding every bad field to `v` under `job.`.
 * The command's case fixes the product kind; a selector's `kind` term must agree with it. That
 * listed devices exist and are of that kind needs I/O: the service checks it.
 */
export function parseJob(input: Job, v: Violations, now: Date): JobSpec | undefined {
  const before = v.list.length;
  if (input.displayName.length > 256) v.add("job.display_name", "must be at most 256 characters");
  const command = input.command;
  let productKind: string | undefined;
  if (!command || command.kind.case === undefined) v.add("job.command", `is required: set ${kindNameList()}`);
  else {
    const product = productByCase(command.kind.case);
    productKind = product.kindName;
    checkCommand(command, product, "job.command", v);
  }
  const target = parseTarget(input, v, productKind);
  const rollout = parseRollout(input, v);
  const abort = parseAbort(input, v);

  let executionTimeoutMs = TASK_DEFAULTS.executionTimeoutMs;
  if (input.executionTimeout) {
    executionTimeoutMs = durationMs(input.executionTimeout);
    if (!(executionTimeoutMs >= 1000 && executionTimeoutMs <= DAY)) v.add("job.execution_timeout", "must be between 1s and 24h");
  }
  const maxAttempts = input.maxAttempts || TASK_DEFAULTS.maxAttempts;
  if (maxAttempts > 10) v.add("job.max_attempts", "must be at most 10");
  let taskTtlMs = TASK_DEFAULTS.ttlMs;
  if (input.taskTtl) {
    taskTtlMs = durationMs(input.taskTtl);
    if (!(taskTtlMs >= 1000 && taskTtlMs <= TASK_DEFAULTS.maxTtlMs)) v.add("job.task_ttl", "must be between 1s and 30 days");
  }
  const taskPriority = parsePriority(input.taskPriority, "job.task_priority", v);
  const startTime = input.startTime ? timestampDate(input.startTime) : undefined;
  if (startTime && startTime.getTime() - now.getTime() > 366 * DAY) v.add("job.start_time", "must be at most a year ahead");

  if (v.list.length > before || !target || !rollout || !productKind) return undefined;
  return {
    displayName: input.displayName,
    command: command!,
    productKind,
    target,
    rollout,
    abort,
    executionTimeoutMs,
    maxAttempts,
    taskTtlMs,
    taskPriority,
    startTime,
  };
}

function parseTarget(input: Job, v: Violations, productKind: string | undefined): JobTarget | undefined {
  const t = input.target;
  if (t.case === "devices") {
    const names = t.value.devices;
    if (names.length === 0) v.add("job.devices.devices", "must name at least one device");
    if (names.length > JOB_LIMITS.maxDevices) {
      v.add("job.devices.devices", `must name at most ${JOB_LIMITS.maxDevices} devices; target more with a selector`);
      return undefined;
    }
    const ids = new Set<string>();
    for (const [i, name] of names.entries()) {
      try {
        ids.add(parseDeviceName(name, `job.devices.devices[${i}]`));
      } catch (err) {
        if (!(err instanceof InvalidArgumentError)) throw err;
        for (const x of err.violations) v.add(x.field, x.description);
        if (v.list.length > 20) break; // enough to show what is wrong
      }
    }
    return { kind: "devices", deviceIds: [...ids].sort() };
  }
  if (t.case === "selector") {
    const field = "job.selector.filter";
    if (t.value.filter.trim() === "") {
      v.add(field, 'is required, e.g. labels.building = "b7" (an empty filter would match every device of the kind)');
      return undefined;
    }
    if (!Object.values(DeviceSelector_Mode).includes(t.value.mode)) v.add("job.selector.mode", `unknown Mode ${t.value.mode}`);
    try {
      const filter = parseDeviceFilter(t.value.filter, field);
      const kind = pinnedKind(filter);
      if (kind !== undefined && productKind !== undefined && kind !== productKind) {
        v.add(field, `selects kind ${kind}, but the command is for a ${productKind}`);
      }
      return {
        kind: "selector",
        filterText: t.value.filter,
        // Only devices of the command's kind, whatever else the filter says (an OR cannot widen it).
        filter: productKind === undefined ? filter : allOf({ type: "text", field: "kind", op: "=", value: productKind }, filter),
        continuous: t.value.mode === DeviceSelector_Mode.CONTINUOUS,
      };
    } catch (err) {
      if (!(err instanceof InvalidArgumentError)) throw err;
      for (const x of err.violations) v.add(x.field, x.description);
      return undefined;
    }
  }
  v.add("job.target", "is required: set devices (a list of devices/{device}) or selector (a device filter)");
  return undefined;
}

function parseRollout(input: Job, v: Violations): RolloutSpec | undefined {
  const r = input.rollout;
  if (!r) return { maxPerMinute: 0 };
  const before = v.list.length;
  if (r.maxPerMinute > JOB_LIMITS.maxPerMinute) v.add("job.rollout.max_per_minute", `must be at most ${JOB_LIMITS.maxPerMinute}`);
  let exponential: RolloutSpec["exponential"];
  if (r.exponential) {
    const e = r.exponential;
    const factor = e.incrementFactor === 0 ? 2 : e.incrementFactor;
    if (e.basePerMinute < 1) v.add("job.rollout.exponential.base_per_minute", "must be at least 1");
    if (r.maxPerMinute > 0 && e.basePerMinute > r.maxPerMinute) v.add("job.rollout.exponential.base_per_minute", "must not exceed rollout.max_per_minute");
    if (!(factor >= JOB_LIMITS.minFactor && factor <= JOB_LIMITS.maxFactor))
      v.add("job.rollout.exponential.increment_factor", `must be between ${JOB_LIMITS.minFactor} and ${JOB_LIMITS.maxFactor}`);
    if (e.successesPerStep < 1) v.add("job.rollout.exponential.successes_per_step", "must be at least 1");
    exponential = { basePerMinute: e.basePerMinute, factor, step: e.successesPerStep };
  }
  if (v.list.length > before) return undefined;
  return { maxPerMinute: r.maxPerMinute, exponential };
}

function parseAbort(input: Job, v: Violations): AbortSpec | undefined {
  const a = input.abortCriteria;
  if (!a) return undefined;
  if (!(Number.isFinite(a.failureThresholdPercent) && a.failureThresholdPercent >= 0 && a.failureThresholdPercent < 100)) {
    v.add("job.abort_criteria.failure_threshold_percent", "must be at least 0 and below 100");
  }
  if (a.minFinishedExecutions < 1)
    v.add("job.abort_criteria.min_finished_executions", "must be at least 1, so that the first failure does not abort a big job");
  return { failurePercent: a.failureThresholdPercent, minFinished: a.minFinishedExecutions, cancelInFlight: a.cancelInFlight };
}
