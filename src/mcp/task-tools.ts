import { CommandSchema } from "../../gen/tether/v1/command_pb.js";
import { CreateTaskRequest_WaitFor, TaskService } from "../../gen/tether/v1/task_service_pb.js";
import { messageSchema, toolInput } from "./json-schema.js";
import { type Args, call, methodTool, requestFrom, type ToolDef, ToolRefusal, without } from "./tool.js";

const m = TaskService.method;
/** CreateTask waits at most 5 minutes (task_service.proto). */
const MAX_WAIT_S = 300;
const DEFAULT_WAIT_S = 30;

function waitSeconds(args: Args): number {
  const w = args.wait_seconds ?? DEFAULT_WAIT_S;
  if (typeof w !== "number" || !Number.isInteger(w) || w < 0 || w > MAX_WAIT_S) {
    throw new ToolRefusal("INVALID_ARGUMENT", `wait_seconds: must be a whole number of seconds from 0 to ${MAX_WAIT_S}`);
  }
  return w;
}

/** Tasks: send a command (and wait for its result), get, list, cancel. */
export const taskTools: ToolDef[] = [
  {
    name: "create_task",
    description:
      "Send a command to a device (`parent`: devices/{device}; `command`: see describe_product) and wait up to wait_seconds for the result (0: do not wait).",
    inputSchema: toolInput(m.createTask.input, {
      pick: ["parent", "request_id", "ttl"],
      extra: {
        command: messageSchema(CommandSchema),
        wait_seconds: {
          type: "integer",
          minimum: 0,
          maximum: MAX_WAIT_S,
          default: DEFAULT_WAIT_S,
          description: "how long to wait for the task to end; many MCP clients give up on a call after 60 s, so for longer work pass 0 and poll get_task",
        },
      },
      required: ["parent", "command"],
    }),
    annotations: { title: "Command a device", destructiveHint: false },
    run: async (api, args, signal) => {
      const wait = waitSeconds(args);
      const req = requestFrom(m.createTask.input, { ...without(args, "command", "wait_seconds"), task: { command: args.command as never } });
      if (wait > 0) {
        req.waitFor = CreateTaskRequest_WaitFor.COMPLETED;
        req.waitTimeout = { $typeName: "google.protobuf.Duration", seconds: BigInt(wait), nanos: 0 };
      }
      return call(api, m.createTask, req, signal);
    },
  },
  methodTool(m.getTask, {
    name: "get_task",
    description: "Get a task (`devices/{device}/tasks/{task}`): state, result or error, attempts.",
    inputSchema: toolInput(m.getTask.input, { pick: ["name"], required: ["name"] }),
    annotations: { title: "Get a task", readOnlyHint: true },
  }),
  methodTool(m.listTasks, {
    name: "list_tasks",
    description: "List a device's tasks, newest first (`parent`: devices/{device}, or devices/- for all); filter e.g. `state = SUCCEEDED OR state = FAILED`.",
    inputSchema: toolInput(m.listTasks.input, { pick: ["parent", "filter", "page_size", "page_token"], required: ["parent"] }),
    annotations: { title: "List tasks", readOnlyHint: true },
  }),
  methodTool(m.cancelTask, {
    name: "cancel_task",
    description: "Cancel a task that has not ended (`devices/{device}/tasks/{task}`); it is never sent again.",
    inputSchema: toolInput(m.cancelTask.input, { pick: ["name", "reason"], required: ["name"] }),
    annotations: { title: "Cancel a task", destructiveHint: false, idempotentHint: true },
  }),
];
