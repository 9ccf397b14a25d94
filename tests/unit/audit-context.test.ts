import { create } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CreateDeviceRequestSchema } from "../../gen/tether/v1/device_service_pb.js";
import { CreateTaskRequestSchema } from "../../gen/tether/v1/task_service_pb.js";
import { FULL_ACCESS, withPrincipal } from "../../src/core/access/access.js";
import { createAuditService } from "../../src/core/audit/audit-service.js";
import type { AuditRecord, PendingAudit } from "../../src/core/ports/audit.js";
import { createMemoryFeed } from "../../src/bus/memory-feed.js";
import { endAudit, runAudited } from "../../src/store/audit-context.js";
import { createAuditStore } from "../../src/store/audit-store.js";
import { type CoreHarness, wireCore } from "../helpers/core-harness.js";

const power = { command: { kind: { case: "led" as const, value: { action: { case: "setPower" as const, value: true } } } } };

/** A call's pending event, as the API's audit interceptor makes it. */
function pending(principal: string, requestId: string, at: Date): PendingAudit {
  return {
    stamp: { principal, credential: "token", certificateSerial: "", method: "tether.v1.TaskService/CreateTask", requestId, time: at },
    resource: "devices/gc-led",
    fieldPaths: ["command"],
    written: false,
  };
}

describe("audit events in the task path's group commit", () => {
  let core: CoreHarness;
  beforeAll(async () => {
    core = await wireCore();
    await core.devices.createDevice(FULL_ACCESS, create(CreateDeviceRequestSchema, { deviceId: "gc-led", device: { kind: { case: "led", value: {} } } }));
  });
  afterAll(() => core?.close());

  it("one batch of two principals' tasks writes one event per task, each as its own caller, in the tasks' transaction", async () => {
    const alice = pending("users/alice", "req-alice", core.clock.now());
    const key = pending("users/bob/apiKeys/k1", "req-bob", core.clock.now());
    const call = (p: PendingAudit, principal: string) =>
      runAudited(p, () =>
        core.tasks.createTask(withPrincipal(FULL_ACCESS, principal), create(CreateTaskRequestSchema, { parent: "devices/gc-led", task: power })),
      );
    // Submitted in the same turn: the batcher flushes them together, in the first caller's async context.
    const [a, b] = await Promise.all([call(alice, "users/alice"), call(key, "users/bob/apiKeys/k1")]);
    expect(alice.written && key.written).toBe(true);
    expect(a.creator).toBe("users/alice");
    expect(b.creator).toBe("users/bob/apiKeys/k1");
    const rows = await core.sql<Array<{ principal: string; resource: string; request_id: string; xid: string }>>`
      SELECT principal, resource, request_id, xmin::text AS xid FROM audit_events ORDER BY id`;
    expect(rows.map((r) => [r.principal, r.resource, r.request_id])).toEqual([
      ["users/alice", a.name, "req-alice"],
      ["users/bob/apiKeys/k1", b.name, "req-bob"],
    ]);
    // Same transaction as each other and as the tasks they describe: one commit, one batch.
    const tasks = await core.sql<Array<{ xid: string; creator: string }>>`SELECT xmin::text AS xid, creator FROM tasks ORDER BY seq`;
    expect(new Set([...rows, ...tasks].map((r) => r.xid)).size).toBe(1);
    expect(tasks.map((t) => t.creator)).toEqual(["users/alice", "users/bob/apiKeys/k1"]);
  });

  it("a task without a caller's context (a test, a service) writes no event; an ended call's context writes nothing more", async () => {
    const before = (await core.sql`SELECT count(*)::int AS n FROM audit_events`)[0]!.n as number;
    await core.tasks.createTask(FULL_ACCESS, create(CreateTaskRequestSchema, { parent: "devices/gc-led", task: power }));
    const p = pending("users/carol", "req-carol", core.clock.now());
    endAudit(p);
    await runAudited(p, () => core.tasks.createTask(FULL_ACCESS, create(CreateTaskRequestSchema, { parent: "devices/gc-led", task: power })));
    expect((await core.sql`SELECT count(*)::int AS n FROM audit_events`)[0]!.n).toBe(before);
    expect(p.written).toBe(false);
  });

  it("a refused item's event is not written with the batch (the API writes it, with the code, after the call)", async () => {
    const p = pending("users/dave", "req-dave", core.clock.now());
    await expect(
      runAudited(p, () => core.tasks.createTask(FULL_ACCESS, create(CreateTaskRequestSchema, { parent: "devices/gone-led", task: power }))),
    ).rejects.toMatchObject({ code: "NOT_FOUND" });
    expect(p.written).toBe(false);
    expect(await core.sql`SELECT 1 FROM audit_events WHERE principal = 'users/dave'`).toHaveLength(0);
  });
});

describe("audit retention", () => {
  let core: CoreHarness;
  beforeAll(async () => {
    core = await wireCore("2026-03-01T00:00:00Z");
  });
  afterAll(() => core?.close());

  it("deletes events older than the retention and keeps the rest", async () => {
    const store = createAuditStore(core.sql);
    const event = (time: string) => ({ ...pending("users/x", time, new Date(time)).stamp, resource: "devices/a", statusCode: 0, fieldPaths: [] });
    await store.insert([event("2025-01-01T00:00:00Z"), event("2026-02-25T00:00:00Z")]);
    const service = createAuditService({ audit: store, devices: core.stores.devices, feed: createMemoryFeed<AuditRecord>(), clock: core.clock, log: quietLog });
    expect(await service.prune(30)).toBe(1);
    expect((await store.list({ limit: 10 })).map((e) => e.requestId)).toEqual(["2026-02-25T00:00:00Z"]);
  });
});

const quietLog = { debug() {}, info() {}, warn() {}, error() {} } as never;
