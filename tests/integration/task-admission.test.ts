import { Code, type ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { TaskService } from "../../gen/tether/v1/task_service_pb.js";
import { connectClient, startTestStack, type TestStack } from "../helpers/stack.js";

let s: TestStack;
beforeAll(async () => {
  s = await startTestStack({ TETHER_TASK_MAX_CREATES_IN_FLIGHT: "2" });
});
afterAll(async () => {
  await s?.cleanup();
});

describe("CreateTask admission control", () => {
  it("refuses what is over capacity at once, and loses nothing it accepted", async () => {
    await connectClient(s, DeviceService, "connect").createDevice({ deviceId: "adm-led", device: { kind: { case: "led", value: {} } } });
    const tasks = connectClient(s, TaskService, "grpc");
    const calls = await Promise.allSettled(
      Array.from({ length: 60 }, (_, i) =>
        tasks.createTask({ parent: "devices/adm-led", task: { command: { kind: { case: "led", value: { action: { case: "setBrightness", value: i } } } } } }),
      ),
    );
    const ok = calls.filter((c) => c.status === "fulfilled");
    const refused = calls.filter((c) => c.status === "rejected").map((c) => (c as PromiseRejectedResult).reason as ConnectError);
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.every((e) => e.code === Code.ResourceExhausted)).toBe(true);
    const listed = await tasks.listTasks({ parent: "devices/adm-led", pageSize: 1000 });
    expect(listed.tasks).toHaveLength(ok.length);
  });
});
