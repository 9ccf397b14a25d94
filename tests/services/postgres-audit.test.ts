import pino from "pino";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code } from "@connectrpc/connect";
import { AuditService } from "../../gen/tether/v1/audit_service_pb.js";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { TaskService } from "../../gen/tether/v1/task_service_pb.js";
import { migrate } from "../../src/store/migrate.js";
import { bearerClient, userToken } from "../helpers/auth.js";
import { freshDatabase } from "../helpers/postgres.js";
import { connectClient, startTestStack, type TestStack } from "../helpers/stack.js";

// The audit log's SQL on PostgreSQL 15 (the unit and integration tests run it on PGlite): events
// in the change's transaction, per-task events of concurrent CreateTask calls, the rights join,
// filters, pages and retention.

let db: Awaited<ReturnType<typeof freshDatabase>>;
let s: TestStack;
let alice: string;
let bob: string;
const led = { kind: { case: "led" as const, value: {} } };
const power = { command: { kind: { case: "led" as const, value: { action: { case: "setPower" as const, value: true } } } } };
beforeAll(async () => {
  db = await freshDatabase("tether_audit");
  await migrate(db.url, pino({ level: "silent" }));
  s = await startTestStack({ DATABASE_URL: db.url });
  alice = await userToken(s, "alice");
  bob = await userToken(s, "bob");
  await bearerClient(s, DeviceService, alice).createDevice({ deviceId: "alice-led", device: led });
  await bearerClient(s, DeviceService, bob).createDevice({ deviceId: "bob-led", device: led });
}, 60_000);
afterAll(async () => {
  await s?.cleanup();
  await db?.drop();
});

describe("the audit log on PostgreSQL", () => {
  it("concurrent CreateTask calls of two users each write their own event, in their task's transaction", async () => {
    const calls = Array.from({ length: 20 }, (_, i) => {
      const [token, device] = i % 2 === 0 ? [alice, "alice-led"] : [bob, "bob-led"];
      return bearerClient(s, TaskService, token).createTask({ parent: `devices/${device}`, task: power });
    });
    const tasks = await Promise.all(calls);
    const sql = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      const rows = await sql<Array<{ principal: string; resource: string; same: boolean }>>`
        SELECT a.principal, a.resource, a.xmin = t.xmin AS same FROM audit_events a
        JOIN tasks t ON a.resource = 'devices/' || t.device_id || '/tasks/' || t.id
        WHERE a.method = 'tether.v1.TaskService/CreateTask'`;
      expect(rows).toHaveLength(20);
      for (const t of tasks) {
        const r = rows.find((x) => x.resource === t.name)!;
        expect(r.principal).toBe(t.creator);
        expect(r.same).toBe(true);
      }
      expect(new Set(rows.map((r) => r.principal))).toEqual(new Set(["users/alice", "users/bob"]));
    } finally {
      await sql.end();
    }
  });

  it("a user's list holds her calls and her devices' events only; filters and pages work", async () => {
    await connectClient(s, DeviceService, "grpc").updateDevice({
      device: { name: "devices/bob-led", displayName: "B", ...led },
      updateMask: { paths: ["display_name"] },
    });
    await expect(bearerClient(s, DeviceService, alice).deleteDevice({ name: "devices/bob-led" })).rejects.toMatchObject({ code: Code.NotFound });
    const mine = (await bearerClient(s, AuditService, alice).listAuditEvents({ pageSize: 1000 })).auditEvents;
    expect(mine.some((e) => e.statusCode === Code.NotFound && e.resource === "devices/bob-led")).toBe(true); // her own refused call
    expect(mine.some((e) => e.principal === "users/admin" && e.resource === "devices/bob-led")).toBe(false);
    const bobs = (await bearerClient(s, AuditService, bob).listAuditEvents({ resource: "devices/bob-led", method: "UpdateDevice" })).auditEvents;
    expect(bobs.map((e) => e.principal)).toEqual(["users/admin"]);
    const page1 = await bearerClient(s, AuditService, alice).listAuditEvents({ pageSize: 3, principal: "users/alice/*" });
    const page2 = await bearerClient(s, AuditService, alice).listAuditEvents({ pageSize: 3, principal: "users/alice/*", pageToken: page1.nextPageToken });
    expect(page2.auditEvents.length).toBeGreaterThan(0);
    const id = (name: string) => BigInt(name.slice("auditEvents/".length));
    expect(id(page1.auditEvents.at(-1)!.name) > id(page2.auditEvents[0]!.name)).toBe(true);
  });

  it("retention deletes nothing recent", async () => {
    expect(await s.app.pruneAudit()).toBe(0);
  });
});
