import { Code } from "@connectrpc/connect";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { freshDatabase } from "../helpers/postgres.js";
import { connectClient, startTestStack, type TestStack } from "../helpers/stack.js";

let s: TestStack;
let db: Awaited<ReturnType<typeof freshDatabase>>;
beforeAll(async () => {
  db = await freshDatabase("tether_devices");
  s = await startTestStack({ DATABASE_URL: db.url });
});
afterAll(async () => {
  await s?.cleanup();
  await db?.drop();
});

describe("DeviceService on a real PostgreSQL (DATABASE_URL)", () => {
  it("migrates, stores and filters devices", async () => {
    const c = connectClient(s, DeviceService, "grpc");
    await c.createDevice({ deviceId: "pg-led", device: { labels: { room: "lab" }, kind: { case: "led", value: { desired: { power: true } } } } });
    await c.createDevice({ deviceId: "pg-coffee", device: { labels: { room: "lab" }, kind: { case: "coffeeMachine", value: {} } } });
    await expect(c.createDevice({ deviceId: "pg-led", device: { kind: { case: "led", value: {} } } })).rejects.toMatchObject({ code: Code.AlreadyExists });
    const res = await c.listDevices({ filter: 'labels.room = "lab" AND kind = "coffee_machine"' });
    expect(res.devices.map((d) => d.name)).toEqual(["devices/pg-coffee"]);
    // The rows are really in PostgreSQL, as protobuf JSON.
    const sql = postgres(db.url, { max: 1 });
    const rows = await sql`SELECT id, kind, desired FROM devices ORDER BY id`;
    await sql.end();
    expect(rows).toEqual([
      { id: "pg-coffee", kind: "coffee_machine", desired: {} },
      { id: "pg-led", kind: "led", desired: { power: true } },
    ]);
  });

  it("applies migrations once when several replicas start together", async () => {
    const extra = await Promise.all([startTestStack({ DATABASE_URL: db.url }), startTestStack({ DATABASE_URL: db.url })]);
    try {
      const c = connectClient(extra[1]!, DeviceService, "connect");
      expect((await c.getDevice({ name: "devices/pg-led" })).name).toBe("devices/pg-led");
    } finally {
      await Promise.all(extra.map((x) => x.cleanup()));
    }
  });
});
