import { parseArgs } from "node:util";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { type Job, JobExecution_TargetState as TargetState, Job_State as JobState, JobSchema } from "../../gen/tether/v1/job_pb.js";
import { JobService, ListJobExecutionsResponseSchema, ListJobsResponseSchema } from "../../gen/tether/v1/job_service_pb.js";
import { Task_State as TaskState } from "../../gen/tether/v1/task_pb.js";
import { RuleSchema } from "../../gen/tether/v1/rule_pb.js";
import { RuleService } from "../../gen/tether/v1/rule_service_pb.js";
import { productByCase } from "../core/products/index.js";
import { connectClient } from "./client.js";
import { commandText, json, priorityText, table, time } from "./format.js";
import { JOB_FLAGS, type JobFlagValues, jobFromFlags } from "./job-args.js";
import { misfireFromFlag, triggerFromFlags } from "./rule-args.js";
import { IMPLIED_KIND_EXAMPLE, KIND_CHOICES } from "./kinds.js";
import { PRIORITY_HELP, priorityFromFlag, TASK_ACTIONS } from "./task-args.js";

export const JOBS_USAGE = `tether jobs <command> [flags]

  create <id> TARGET --command 'ACTION [VALUE]' [ROLLOUT] [ABORT] [--timeout 60s] [--max-attempts 3]
         [--ttl 7d] [--priority N] [--start TIME] [--display-name S] [--watch]
         ${PRIORITY_HELP} (of each execution)
      TARGET:  --selector 'labels.building = "b7"' [--continuous] [--kind K]   (ListDevices filter syntax)
               --devices kitchen-1,desk-2
               the command's kind (${KIND_CHOICES}): --kind, the selector's kind term, the first
               device's, or the one kind with the command's action ('${IMPLIED_KIND_EXAMPLE}' needs no --kind)
      ROLLOUT: --rate N (per minute) [--exp-base N --exp-factor 2 --exp-every N (successes per step)]
      ABORT:   --abort-percent 2 --abort-min 50 [--abort-cancel]
      ACTION:  ${TASK_ACTIONS.replace(/\n/g, "\n               ")}
  schedule <rule-id> WHEN TARGET --command 'ACTION [VALUE]' [ROLLOUT] [ABORT] [...create's flags]
      WHEN:    --cron 'S M H DOM MON DOW' [--tz Europe/Paris] | --at TIME   [--start TIME] [--end TIME]
               [--misfire skip|fire_once]
               creates rules/<rule-id>, which starts a job like the one create makes at each firing
               (jobs/<rule-id>-<yyyymmdd>t<hhmmss>); see them with tether rules runs <rule-id>
  list [--page-size N] [--page-token T]
  get <id>
  watch <id>                 live progress bar until the job ends
  executions <id> [--state FAILED | --target SKIPPED] [--page-size N] [--page-token T]
  pause <id>
  resume <id>
  cancel <id> [--in-flight] [--reason TEXT]

Global: --json (protobuf JSON output), --address https://host:port, --certs DIR`;

const jobName = (id: string) => (id.startsWith("jobs/") ? id : `jobs/${id}`);

/** `tether jobs ...` */
export async function jobsCommand(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  const { values: v, positionals: p } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      ...JOB_FLAGS,
      json: { type: "boolean" },
      address: { type: "string" },
      certs: { type: "string" },
      watch: { type: "boolean" },
      "page-size": { type: "string" },
      "page-token": { type: "string" },
      state: { type: "string", multiple: true },
      target: { type: "string", multiple: true },
      "in-flight": { type: "boolean" },
      reason: { type: "string" },
      cron: { type: "string" },
      tz: { type: "string" },
      at: { type: "string" },
      end: { type: "string" },
      misfire: { type: "string" },
    },
  });
  priorityFromFlag(v.priority, "tether jobs"); // before any I/O: a usage error either way
  const opts = { address: v.address, certsDir: v.certs };
  const client = connectClient(JobService, opts);
  const out = (j: Job) => console.log(v.json ? json(JobSchema, j) : describe(j));
  const id = () => {
    if (!p[0]) throw new Error(`tether jobs ${sub}: missing job id\n\n${JOBS_USAGE}`);
    return jobName(p[0]);
  };
  const watch = async (name: string) => {
    let last: Job | undefined;
    for await (const { job } of client.watchJob({ name })) {
      if (!job) continue;
      last = job;
      if (v.json) console.log(JSON.stringify(json(JobSchema, job)));
      else if (process.stdout.isTTY) process.stdout.write(`\r\x1b[2K${progressLine(job)}`);
      else console.log(progressLine(job));
    }
    if (process.stdout.isTTY && !v.json) process.stdout.write("\n");
    if (last && !v.json) console.log(`${JobState[last.state]}: ${last.stateReason}`);
  };
  switch (sub) {
    case "create": {
      const jobId = id().slice("jobs/".length);
      const devices = connectClient(DeviceService, opts);
      const job = await jobFromFlags(v as JobFlagValues, async (name) => productByCase((await devices.getDevice({ name })).kind.case!).kindName);
      const created = await client.createJob({ jobId, job });
      if (!v.watch) return out(created);
      console.log(`created ${created.name}: ${created.progress?.targetCount ?? 0n} target(s)`);
      return watch(created.name);
    }
    case "schedule": {
      const ruleId = id().slice("jobs/".length);
      const devices = connectClient(DeviceService, opts);
      // --start and --end bound the rule's firings; each job starts when the rule fires.
      const job = await jobFromFlags(
        { ...(v as JobFlagValues), start: undefined },
        async (name) => productByCase((await devices.getDevice({ name })).kind.case!).kindName,
      );
      const rule = await connectClient(RuleService, opts).createRule({
        ruleId,
        rule: {
          displayName: v["display-name"] ?? "",
          ...triggerFromFlags({ cron: v.cron, tz: v.tz, at: v.at, start: v.start, end: v.end }),
          target: { case: "job", value: job },
          misfirePolicy: misfireFromFlag(v.misfire),
        },
      });
      console.log(
        v.json
          ? json(RuleSchema, rule)
          : `created ${rule.name}: starts a job at ${time(rule.nextFireTime)}${rule.trigger.case === "cron" ? ` and on "${rule.trigger.value.expression}" (${rule.trigger.value.timeZone})` : ""}`,
      );
      return;
    }
    case "get":
      return out(await client.getJob({ name: id() }));
    case "list": {
      const res = await client.listJobs({ pageSize: Number(v["page-size"] ?? 0), pageToken: v["page-token"] ?? "" });
      if (v.json) return console.log(json(ListJobsResponseSchema, res));
      console.log(
        table(
          ["JOB", "STATE", "COMMAND", "TARGET", "DONE", "OK", "FAILED", "CREATED"],
          res.jobs.map((j) => {
            const pr = j.progress!;
            return [
              j.name.slice(5),
              JobState[j.state],
              commandText(j.command),
              targetText(j),
              `${pr.executionCount - pr.inFlightCount}/${pr.targetCount}`,
              String(pr.succeededCount),
              String(pr.failedCount),
              time(j.createTime),
            ];
          }),
        ),
      );
      if (res.nextPageToken) console.log(`\nmore: --page-token ${res.nextPageToken}`);
      return;
    }
    case "watch":
      return watch(id());
    case "executions": {
      const filter = [...(v.state ?? []).map((s) => `task_state = ${s}`), ...(v.target ?? []).map((s) => `target_state = ${s}`)].join(" OR ");
      const res = await client.listJobExecutions({ parent: id(), filter, pageSize: Number(v["page-size"] ?? 0), pageToken: v["page-token"] ?? "" });
      if (v.json) return console.log(json(ListJobExecutionsResponseSchema, res));
      console.log(
        table(
          ["DEVICE", "TARGET", "TASK STATE", "TASK", "CREATED", "REASON"],
          res.executions.map((e) => [
            e.device.slice(8),
            TargetState[e.targetState] ?? "-",
            e.taskState ? TaskState[e.taskState] : "-",
            e.task ? e.task.split("/").at(-1)! : "-",
            time(e.createTime),
            e.reason || "-",
          ]),
        ),
      );
      if (res.progress) console.log(`\n${countsText(res.progress)}`);
      if (res.nextPageToken) console.log(`more: --page-token ${res.nextPageToken}`);
      return;
    }
    case "pause":
      return out(await client.pauseJob({ name: id() }));
    case "resume":
      return out(await client.resumeJob({ name: id() }));
    case "cancel":
      return out(await client.cancelJob({ name: id(), cancelInFlight: v["in-flight"] ?? false, reason: v.reason ?? "" }));
    default:
      throw new Error(JOBS_USAGE);
  }
}

/** `[██████████░░░░░░░░░░]  52% 520/1000 ✓ 500 ✗ 12 ⋯ 8  600/min  RUNNING` */
export function progressLine(j: Job, width = 30): string {
  const pr = j.progress!;
  const targets = Number(pr.targetCount);
  const done = Number(pr.executionCount - pr.inFlightCount + pr.skippedCount);
  const frac = targets > 0 ? Math.min(1, done / targets) : 0;
  const filled = Math.round(frac * width);
  const rate = pr.rolloutRatePerMinute > 0 ? `${Math.round(pr.rolloutRatePerMinute)}/min` : j.state === JobState.RUNNING ? "unlimited" : "-";
  return `[${"█".repeat(filled)}${"░".repeat(width - filled)}] ${String(Math.floor(frac * 100)).padStart(3)}% ${done}/${targets}  ✓ ${pr.succeededCount}  ✗ ${pr.failedCount}  ⋯ ${pr.inFlightCount}  skipped ${pr.skippedCount}  ${rate}  ${JobState[j.state]}`;
}

function countsText(pr: NonNullable<Job["progress"]>): string {
  const states = pr.executionsByState.map((c) => `${TaskState[c.state]} ${c.count}`).join(", ") || "no executions";
  return `targets ${pr.targetCount}: pending ${pr.pendingCount}, skipped ${pr.skippedCount}; executions: ${states}`;
}

function targetText(j: Job): string {
  if (j.target.case === "selector") return `${j.target.value.filter}${j.target.value.mode === 2 ? " (continuous)" : ""}`;
  if (j.target.case === "devices") return j.target.value.devices.length > 0 ? j.target.value.devices.map((d) => d.slice(8)).join(",") : "device list";
  return "-";
}

function describe(j: Job): string {
  const pr = j.progress!;
  const r = j.rollout;
  const rollout = !r
    ? "unlimited"
    : r.exponential
      ? `${r.exponential.basePerMinute}/min ×${r.exponential.incrementFactor} every ${r.exponential.successesPerStep} successes${r.maxPerMinute ? `, at most ${r.maxPerMinute}/min` : ""}`
      : r.maxPerMinute
        ? `${r.maxPerMinute}/min`
        : "unlimited";
  return table(
    ["FIELD", "VALUE"],
    [
      ["name", j.name],
      ["display_name", j.displayName || "-"],
      ["state", JobState[j.state]],
      ["state_reason", j.stateReason || "-"],
      ["command", commandText(j.command)],
      ["task_priority", priorityText(j.taskPriority)],
      ["target", targetText(j)],
      ["rollout", rollout],
      ["abort", pr.abortStatus],
      ["progress", progressLine(j, 20)],
      ["counts", countsText(pr)],
      ["start_time", time(j.startTime)],
      ["create_time", time(j.createTime)],
      ["end_time", time(j.endTime)],
    ],
  );
}
