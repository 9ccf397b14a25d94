import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import { Task_State as State, type Task, TaskSchema } from "../../gen/tether/v1/task_pb.js";
import { CreateTaskRequest_WaitFor as WaitFor, ListTasksResponseSchema, TaskService } from "../../gen/tether/v1/task_service_pb.js";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { productByCase } from "../core/products/index.js";
import { connectClient } from "./client.js";
import { commandText, json, priorityText, resultText, table, time } from "./format.js";
import { commandFromArgs, PRIORITY_HELP, parseDuration, priorityFromFlag, TASK_ACTIONS } from "./task-args.js";

export const TASKS_USAGE = `tether tasks <command> [flags]

  create <device> <action> [value] [--ttl 30s] [--priority N] [--request-id ID] [--wait ack|done]
         [--timeout 30s]
         ${PRIORITY_HELP}
         --wait waits for the device to acknowledge (ack) or finish (done), up to --timeout (30 s by
         default, at most 5m); Ctrl-C stops waiting and prints the task, which goes on
         ${TASK_ACTIONS.replace(/\n/g, "\n         ")}
  get <device>/<task> | devices/<device>/tasks/<task>
  list <device>|- [--state QUEUED] [--page-size N] [--page-token T]
  cancel <device>/<task> [--reason TEXT]
  watch <device>|-|<device>/<task> [--initial]`;

const deviceName = (d: string) => (d === "-" ? "devices/-" : d.startsWith("devices/") ? d : `devices/${d}`);
const taskName = (t: string) => (t.startsWith("devices/") ? t : `devices/${t.replace("/", "/tasks/")}`);
const short = (t: Task) => t.name.replace(/^devices\//, "").replace("/tasks/", "/");

/** `tether tasks ...` */
export async function tasksCommand(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  const { values: v, positionals: p } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      json: { type: "boolean" },
      address: { type: "string" },
      certs: { type: "string" },
      ttl: { type: "string" },
      priority: { type: "string" },
      "request-id": { type: "string" },
      wait: { type: "string" },
      timeout: { type: "string" },
      state: { type: "string", multiple: true },
      "page-size": { type: "string" },
      "page-token": { type: "string" },
      reason: { type: "string" },
      initial: { type: "boolean" },
    },
  });
  // Before any I/O: a bad flag is a usage error whether or not a server is reachable.
  const priority = priorityFromFlag(v.priority, "tether tasks");
  const opts = { address: v.address, certsDir: v.certs };
  const client = connectClient(TaskService, opts);
  const out = (t: Task) => console.log(v.json ? json(TaskSchema, t) : describe(t));
  /**
   * Ctrl-C while `--wait` waits: the task lives on, so say which it is and how to follow or cancel
   * it (the request id returns it without creating another), and exit 130 as an interrupt does.
   */
  async function waitOrTell(req: Parameters<typeof client.createTask>[0] & { requestId: string }): Promise<Task> {
    const ac = new AbortController();
    const interrupt = () => ac.abort();
    process.once("SIGINT", interrupt);
    try {
      return await client.createTask(req, { signal: ac.signal });
    } catch (err) {
      if (!ac.signal.aborted) throw err;
      const t = await client.createTask({ ...req, waitFor: WaitFor.UNSPECIFIED, waitTimeout: undefined });
      console.error(
        `interrupted: ${t.name} is ${State[t.state]} and goes on without the wait\n  follow it: tether tasks watch ${short(t)}\n  cancel it: tether tasks cancel ${short(t)}`,
      );
      process.exit(130);
    } finally {
      process.off("SIGINT", interrupt);
    }
  }
  const arg = (i: number, what: string) => {
    if (!p[i]) throw new Error(`tether tasks ${sub}: missing ${what}\n\n${TASKS_USAGE}`);
    return p[i]!;
  };
  switch (sub) {
    case "create": {
      const parent = deviceName(arg(0, "device"));
      const device = await connectClient(DeviceService, opts).getDevice({ name: parent });
      const command = commandFromArgs(productByCase(device.kind.case!).kindName, p[1], p[2]);
      const waitFor = v.wait === undefined ? WaitFor.UNSPECIFIED : v.wait === "ack" ? WaitFor.ACKNOWLEDGED : v.wait === "done" ? WaitFor.COMPLETED : undefined;
      if (waitFor === undefined) throw new Error(`--wait ${v.wait}: expected ack or done`);
      if (v.timeout !== undefined && v.wait === undefined)
        console.error("warning: --timeout only bounds --wait ack|done; without --wait the call returns at once");
      // A wait carries a request id even when none was given: after Ctrl-C the same id finds the task.
      const requestId = v["request-id"] ?? (waitFor === WaitFor.UNSPECIFIED ? "" : randomUUID());
      const req = {
        parent,
        task: { command, priority },
        requestId,
        ttl: v.ttl ? parseDuration(v.ttl) : undefined,
        waitFor,
        waitTimeout: v.timeout ? parseDuration(v.timeout) : undefined,
      };
      if (waitFor === WaitFor.UNSPECIFIED) return out(await client.createTask(req));
      return out(await waitOrTell(req));
    }
    case "get":
      return out(await client.getTask({ name: taskName(arg(0, "task")) }));
    case "list": {
      const res = await client.listTasks({
        parent: deviceName(arg(0, "device or -")),
        filter: (v.state ?? []).map((st) => `state = ${st}`).join(" OR "),
        pageSize: Number(v["page-size"] ?? 0),
        pageToken: v["page-token"] ?? "",
      });
      if (v.json) return console.log(json(ListTasksResponseSchema, res));
      console.log(
        table(
          ["TASK", "STATE", "PRIORITY", "COMMAND", "ATTEMPT", "CREATED", "REASON"],
          res.tasks.map((t) => [
            short(t),
            State[t.state],
            priorityText(t.priority),
            commandText(t.command),
            String(t.attempt),
            time(t.createTime),
            t.stateReason || "-",
          ]),
        ),
      );
      if (res.nextPageToken) console.log(`\nmore: --page-token ${res.nextPageToken}`);
      return;
    }
    case "cancel":
      return out(await client.cancelTask({ name: taskName(arg(0, "task")), reason: v.reason ?? "" }));
    case "watch": {
      const target = arg(0, "device, - or task");
      const name = target.includes("/tasks/") || /^[^/]+\/[0-9a-f-]{36}$/.test(target) ? taskName(target) : deviceName(target);
      for await (const { task } of client.watchTasks({ name, sendInitial: v.initial ?? false })) {
        if (!task) continue;
        if (v.json) console.log(JSON.stringify(json(TaskSchema, task)));
        else
          console.log(
            `${new Date().toISOString()}  ${short(task)}  ${State[task.state]}${task.progress ? ` ${task.progress.percent}% ${task.progress.message}` : ""}${task.stateReason ? `  (${task.stateReason})` : ""}`,
          );
      }
      return;
    }
    default:
      throw new Error(TASKS_USAGE);
  }
}

function describe(t: Task): string {
  return table(
    ["FIELD", "VALUE"],
    [
      ["name", t.name],
      ["state", State[t.state]],
      ["state_reason", t.stateReason || "-"],
      ["priority", priorityText(t.priority)],
      ["command", commandText(t.command)],
      ["result", resultText(t.result)],
      ["attempt", `${t.attempt} of ${t.maxAttempts}`],
      ["progress", t.progress ? `${t.progress.percent}% ${t.progress.message}` : "-"],
      ["error", t.error ? `${t.error.code}: ${t.error.message}` : "-"],
      ["request_id", t.requestId || "-"],
      ["create_time", time(t.createTime)],
      ["send_time", time(t.sendTime)],
      ["deliver_time", time(t.deliverTime)],
      ["end_time", time(t.endTime)],
      ["expire_time", time(t.expireTime)],
    ],
  );
}
