import { create } from "@bufbuild/protobuf";
import pino from "pino";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeviceSchema } from "../../gen/tether/v1/device_pb.js";
import { createConnectivityStore } from "../../src/store/connectivity-store.js";
import { createDeviceStore } from "../../src/store/device-store.js";
import { migrate } from "../../src/store/migrate.js";
import { freshDatabase } from "../helpers/postgres.js";

/** The presence statements on PostgreSQL 15 (the unit tests run them on PGlite), with two pools racing like two replicas. */
let db: Awaited<ReturnType<typeof freshDatabase>>;
let pools: postgres.Sql[];
beforeAll(async () => {
  db = await freshDatabase("tether_connectivity");
  await migrate(db.url, pino({ level: "silent" }));
  pools = [postgres(db.url, { max: 4, onnotice: () => {} }), postgres(db.url, { max: 4, onnotice: () => {} })];
});
afterAll(async () => {
  await Promise.all((pools ?? []).map((p) => p.end()));
  await db?.drop();
});

describe("connectivity on PostgreSQL", () => {
  it("records one event per change when two replicas hear the same presence, and the silence, shutdown and retention statements", async () => {
    const [a, b] = pools.map((p) => createDeviceStore(p)) as [ReturnType<typeof createDeviceStore>, ReturnType<typeof createDeviceStore>];
    const events = createConnectivityStore(pools[0]!);
    const t0 = new Date("2026-03-01T10:00:00Z");
    const at = (s: number) => new Date(t0.getTime() + s * 1000);
    for (const id of ["pg-a", "pg-b"])
      await a.insert(create(DeviceSchema, { name: `devices/${id}`, uid: crypto.randomUUID(), kind: { case: "led", value: {} } }), t0);

    // Both replicas receive every presence message (presence is not a shared subscription).
    for (let i = 0; i < 20; i++) {
      const online = i % 2 === 0;
      const change = online ? { online, remoteAddress: "192.0.2.1:1" } : { online, reason: "keepalive_timeout" as const };
      const [x, y] = await Promise.all([a.setPresence("pg-a", change, at(i)), b.setPresence("pg-a", change, at(i))]);
      expect([x!.changed, y!.changed].filter(Boolean)).toHaveLength(1);
    }
    const list = await events.list("pg-a", { limit: 100 });
    expect(list).toHaveLength(20);
    expect(list.map((e) => e.reason).slice(0, 2)).toEqual(["keepalive_timeout", "connected"]);
    expect((await events.list("pg-a", { beforeId: list[9]!.id, limit: 100 })).map((e) => e.id)).toEqual(list.slice(10).map((e) => e.id));

    // Silence: online, nothing of its own since the connect.
    await a.setPresence("pg-b", { online: true }, at(100));
    expect((await a.markSilent(at(99))).map((d) => d.name)).toEqual([]);
    expect((await a.markSilent(at(200))).map((d) => [d.name, d.connectivity?.silent])).toEqual([["devices/pg-b", true]]);
    expect(await a.touch("pg-b", at(201))).toBe(false); // a heartbeat: still silent
    expect(await a.touch("pg-b", at(202), { uplink: true })).toBe(true);
    expect((await a.get("pg-b"))!.device.connectivity).toMatchObject({ online: true, silent: false });

    // Broker lost, then the retained online heard again: broker_restored.
    expect((await a.setAllOffline(at(300), "broker_lost")).map((d) => d.name)).toEqual(["devices/pg-b"]);
    await a.setPresence("pg-b", { online: true }, at(301));
    expect((await events.list("pg-b", { limit: 2 })).map((e) => e.reason)).toEqual(["broker_restored", "broker_lost"]);

    expect(await events.deleteBefore(at(250))).toBe(21);
    expect(await events.list("pg-a", { limit: 100 })).toEqual([]);
    expect((await a.get("pg-a"))!.device.connectivity?.lastEvent?.reason).toBeGreaterThan(0);
  });
});
