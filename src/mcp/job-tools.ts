import { Code, ConnectError, type Transport } from "@connectrpc/connect";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { JobSchema } from "../../gen/tether/v1/job_pb.js";
import { JobService } from "../../gen/tether/v1/job_service_pb.js";
import { messageSchema, toolInput } from "./json-schema.js";
import { type Args, CONFIRM_ARG, call, methodTool, requestFrom, type ToolDef, without } from "./tool.js";

const m = JobService.method;
const JOB_OUTPUT = ["name", "uid", "state", "state_reason", "progress", "create_time", "update_time", "end_time", "creator"];

/** A job aimed by selector (a filter over the fleet) rather than at listed devices. */
const isFleetWide = (args: Args) => typeof args.job === "object" && args.job !== null && "selector" in args.job;

/** How many devices the job's target matches now, among those the caller may see (the API's own rights). */
async function matchedDevices(api: Transport, job: ReturnType<typeof requestFrom<typeof m.createJob.input>>["job"], signal: AbortSignal): Promise<number> {
  const target = job?.target;
  if (target?.case === "devices") {
    let n = 0;
    for (const name of new Set(target.value.devices)) {
      const found = await api.unary(DeviceService.method.getDevice, signal, 30_000, undefined, { name }).then(
        () => true,
        (err: unknown) => {
          if (ConnectError.from(err).code === Code.NotFound) return false;
          throw err;
        },
      );
      if (found) n++;
    }
    return n;
  }
  if (target?.case !== "selector") return 0;
  const res = await api.unary(DeviceService.method.countDevices, signal, 30_000, undefined, { filter: target.value.filter });
  return Number(res.message.totalCount);
}

/** Jobs: one command to many devices (a dry run counts them first), and canceling one. */
export const jobTools: ToolDef[] = [
  {
    name: "create_job",
    description:
      'Send one command to many devices at a controlled rate: job.devices {"devices":[...]} or job.selector {"filter":...}. dry_run: true only counts the matched devices; a selector job needs confirm: true.',
    inputSchema: toolInput(m.createJob.input, {
      pick: ["job_id"],
      extra: {
        job: messageSchema(JobSchema, { omit: JOB_OUTPUT }),
        dry_run: { type: "boolean", description: "count the devices the target matches now; create nothing" },
        confirm: CONFIRM_ARG,
      },
      required: ["job"],
    }),
    annotations: { title: "Create a job", destructiveHint: true },
    // A dry run changes nothing; a selector can reach the whole fleet.
    needsConfirm: (args) => args.dry_run !== true && isFleetWide(args),
    run: async (api, args, signal) => {
      const req = requestFrom(m.createJob.input, without(args, "dry_run", "confirm"));
      if (args.dry_run === true) {
        const n = await matchedDevices(api, req.job, signal);
        return { dryRun: true, matchedDevices: n };
      }
      return call(api, m.createJob, req, signal);
    },
  },
  methodTool(m.getJob, {
    name: "get_job",
    description: "Get a job (`jobs/{job}`): state and progress (succeeded, failed, pending counts).",
    inputSchema: toolInput(m.getJob.input, { pick: ["name"], required: ["name"] }),
    annotations: { title: "Get a job", readOnlyHint: true },
  }),
  methodTool(m.cancelJob, {
    name: "cancel_job",
    description: "Cancel a job (`jobs/{job}`); cancel_in_flight also cancels its tasks not yet ended. Destructive: confirm: true after the user agreed.",
    inputSchema: toolInput(m.cancelJob.input, { pick: ["name", "cancel_in_flight", "reason"], extra: { confirm: CONFIRM_ARG }, required: ["name", "confirm"] }),
    annotations: { title: "Cancel a job", destructiveHint: true, idempotentHint: true },
    needsConfirm: () => true,
  }),
];
