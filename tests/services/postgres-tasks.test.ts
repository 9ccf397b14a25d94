import { DEFAULT_PRIORITY } from "../../src/core/tasks/task-record.js";
import { create } from "@bufbuild/protobuf";
import pino from "pino";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CupSize, Recipe } from "../../gen/tether/v1/coffee_machine_pb.js";
import { CommandSchema } from "../../gen/tether/v1/command_pb.js";
import { DeviceSchema } from "../../gen/tether/v1/device_pb.js";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { Task_State as State } from "../../gen/tether/v1/task_pb.js";
import { CreateTaskRequest_WaitFor as WaitFor, TaskService } from "../../gen/tether/v1/task_service_pb.js";
import { deliverableCount } from "../../src/core/tasks/delivery-plan.js";
import { TASK_DEFAULTS } from "../../src/core/tasks/task-request.js";
import { migrate } from "../../src/store/migrate.js";
import { createDeviceStore } from "../../src/store/device-store.js";
import { createTaskStore } from "../../src/store/task-store.js";
import { coffeeSim } from "../helpers/devices.js";
import { freshDatabase } from "../helpers/postgres.js";
import { connectClient, startTestStack, type TestStack } from "../helpers/stack.js";

let db: Awaited<ReturnType<typeof freshDatabase>>;
beforeAll(async () => {
  db = await freshDatabase("tether_tasks");
  await migrate(db.url, pino({ level: "silent" }));
});
afterAll(async () => {
  await db?.drop();
});

describe("tasks on a real PostgreSQL", () => {
  it("runs the round trip with a simulated device", async () => {
    const s: TestStack = await startTestStack({ DATABASE_URL: db.url });
    try {
      await connectClient(s, DeviceService, "grpc").createDevice({ deviceId: "pg-coffee", device: { kind: { case: "coffeeMachine", value: {} } } });
      const { device } = await coffeeSim(s, "pg-coffee", { brewMs: 200 });
      try {
        const t = await connectClient(s, TaskService, "grpc").createTask({
          parent: "devices/pg-coffee",
          task: { command: { kind: { case: "coffeeMachine", value: { action: { case: "brew", value: { recipe: Recipe.LUNGO, size: CupSize.MEDIUM } } } } } },
          waitFor: WaitFor.COMPLETED,
        });
        expect(t.state).toBe(State.SUCCEEDED);
        expect(t.result?.kind.case).toBe("coffeeMachine");
      } finally {
        await device.close();
      }
    } finally {
      await s.cleanup();
    }
  });

  it("never hands the same task to two dispatchers racing on separate connections", async () => {
    const pools = [postgres(db.url, { max: 4, onnotice: () => {} }), postgres(db.url, { max: 4, onnotice: () => {} })];
    try {
      const devices = createDeviceStore(pools[0]!);
      const now = new Date();
      await devices.insert(create(DeviceSchema, { name: "devices/race-led", uid: crypto.randomUUID(), kind: { case: "led", value: {} } }), now);
      await devices.setPresence("race-led", { online: true }, now);
      const stores = pools.map(createTaskStore);
      const command = create(CommandSchema, { kind: { case: "led", value: { action: { case: "setPower", value: true } } } });
      for (let i = 0; i < 60; i++) {
        await stores[0]!.create({
          id: crypto.randomUUID(),
          deviceId: "race-led",
          command,
          state: State.QUEUED,
          stateReason: "",
          expireTime: new Date(now.getTime() + 60_000),
          executionTimeoutMs: TASK_DEFAULTS.executionTimeoutMs,
          maxAttempts: 3,
          attempt: 0,
          createTime: now,
          updateTime: now,
          cancelPending: false,
          lateEventCount: 0,
          priority: DEFAULT_PRIORITY,
          creator: "",
        });
      }
      // Eight claimers, four per pool, each asking for up to 100 at a time.
      const claims = await Promise.all(Array.from({ length: 8 }, (_, i) => stores[i % 2]!.claimForSend("race-led", () => new Date(), deliverableCount)));
      const ids = claims.flat().map((t) => t.id);
      expect(new Set(ids).size).toBe(ids.length);
      // Whatever a SKIP LOCKED loser left behind is picked up by the next round.
      const rest = await stores[1]!.claimForSend("race-led", () => new Date(), deliverableCount);
      expect(ids.length + rest.length).toBe(60);
    } finally {
      await Promise.all(pools.map((p) => p.end()));
    }
  });
});
