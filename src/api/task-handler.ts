import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { TaskService as TaskServiceDesc } from "../../gen/tether/v1/task_service_pb.js";
import type { TaskService } from "../core/tasks/task-service.js";

/** TaskService over Connect/gRPC: a thin shell over the core. */
export function taskHandler(tasks: TaskService): ServiceImpl<typeof TaskServiceDesc> {
  return {
    createTask: (req, ctx: HandlerContext) => tasks.createTask(req, ctx.signal),
    getTask: (req) => tasks.getTask(req.name),
    listTasks: (req) => tasks.listTasks(req),
    cancelTask: (req) => tasks.cancelTask(req.name, req.reason),
    async *watchTasks(req, ctx) {
      for await (const task of tasks.watchTasks(req.name, req.sendInitial, ctx.signal)) {
        yield { task };
      }
    },
  };
}
