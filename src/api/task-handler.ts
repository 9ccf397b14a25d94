import type { ServiceImpl } from "@connectrpc/connect";
import type { TaskService as TaskServiceDesc } from "../../gen/tether/v1/task_service_pb.js";
import type { TaskService } from "../core/tasks/task-service.js";
import { accessOf, kCutOff } from "./auth.js";

/** TaskService over Connect/gRPC: a thin shell over the core. */
export function taskHandler(tasks: TaskService): ServiceImpl<typeof TaskServiceDesc> {
  return {
    createTask: (req, ctx) => tasks.createTask(accessOf(ctx), req, ctx.signal),
    getTask: (req, ctx) => tasks.getTask(accessOf(ctx), req.name),
    listTasks: (req, ctx) => tasks.listTasks(accessOf(ctx), req),
    cancelTask: (req, ctx) => tasks.cancelTask(accessOf(ctx), req.name, req.reason),
    async *watchTasks(req, ctx) {
      for await (const task of tasks.watchTasks(accessOf(ctx), req.name, req.sendInitial, ctx.signal, ctx.values.get(kCutOff))) {
        yield { task };
      }
    },
  };
}
