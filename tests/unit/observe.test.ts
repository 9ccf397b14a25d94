import { create } from "@bufbuild/protobuf";
import { createClient, createRouterTransport } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { DeviceGatewayService, PollDownlinkResponseSchema } from "../../gen/tether/device/v1/gateway_service_pb.js";
import { TaskSchema } from "../../gen/tether/v1/task_pb.js";
import { CreateTaskRequest_WaitFor, TaskService, WatchTasksResponseSchema } from "../../gen/tether/v1/task_service_pb.js";
import { observeInterceptor } from "../../src/api/observe.js";

/** A logger that keeps its warn and error lines. */
function capture() {
  const lines: Array<{ level: string; fields: Record<string, unknown>; msg: string }> = [];
  const at = (level: string) => (fields: Record<string, unknown>, msg: string) => void lines.push({ level, fields, msg });
  return { lines, log: { warn: at("warn"), error: at("error"), info: at("info") } as never };
}

/**
 * Task and gateway services over an in-memory transport whose handlers take `callMs` of a fake
 * clock each: the interceptor measures with that clock, so a "slow" call takes no real time.
 */
function setup(slowCallMs: number, callMs: number) {
  const c = capture();
  let t = 0;
  const elapse = () => void (t += callMs);
  const transport = createRouterTransport(
    ({ service }) => {
      service(TaskService, {
        createTask: () => (elapse(), create(TaskSchema, { name: "devices/d1/tasks/t1" })),
        async *watchTasks() {
          elapse();
          yield create(WatchTasksResponseSchema, {});
        },
      });
      service(DeviceGatewayService, { pollDownlink: () => (elapse(), create(PollDownlinkResponseSchema, {})) });
    },
    { router: { interceptors: [observeInterceptor({ log: c.log, slowCallMs, now: () => t })] } },
  );
  return { lines: c.lines, tasks: createClient(TaskService, transport), gateway: createClient(DeviceGatewayService, transport) };
}

describe("observe interceptor: slow calls", () => {
  it("logs an ordinary unary call slower than slowCallMs, with its request id", async () => {
    const s = setup(2000, 2500);
    await s.tasks.createTask({ parent: "devices/d1" }, { headers: { "x-request-id": "slow-1" } });
    expect(s.lines).toEqual([
      {
        level: "warn",
        msg: "slow call",
        fields: expect.objectContaining({ requestId: "slow-1", service: "tether.v1.TaskService", method: "CreateTask", code: "ok", ms: 2500 }),
      },
    ]);
  });

  it("does not log a CreateTask that waits for the device, however long it took", async () => {
    const s = setup(2000, 25_000);
    await s.tasks.createTask({ parent: "devices/d1", waitFor: CreateTaskRequest_WaitFor.COMPLETED, waitTimeout: { seconds: 30n } });
    await s.tasks.createTask({ parent: "devices/d1", waitFor: CreateTaskRequest_WaitFor.ACKNOWLEDGED });
    expect(s.lines).toEqual([]);
  });

  it("does not log the gateway's long poll, but does log a poll that does not listen", async () => {
    const s = setup(2000, 25_000);
    await s.gateway.pollDownlink({ listenDuration: { seconds: 25n } });
    expect(s.lines).toEqual([]);
    await s.gateway.pollDownlink({});
    expect(s.lines.map((l) => [l.msg, l.fields.method])).toEqual([["slow call", "PollDownlink"]]);
  });

  it("does not log a long stream", async () => {
    const s = setup(2000, 60_000);
    for await (const _ of s.tasks.watchTasks({ name: "devices/-" })) break;
    expect(s.lines.filter((l) => l.msg === "slow call")).toEqual([]);
  });

  it("a fast call is not logged", async () => {
    const s = setup(2000, 10);
    await s.tasks.createTask({ parent: "devices/d1" });
    expect(s.lines).toEqual([]);
  });
});
