import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Database, openDatabase } from "../../src/store/database.js";
import { createEmbeddedVacuum } from "../../src/store/embedded-vacuum.js";
import { eventually } from "../helpers/devices.js";

/**
 * The embedded database's autovacuum on PGlite, which has none of its own: updated rows' dead
 * versions are reclaimed and statistics gathered, one table per step, the worst first.
 */
let dir: string;
let db: Database;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "tether-vacuum-"));
  db = await openDatabase({ dataDir: dir, maxConnections: 1, log: pino({ level: "silent" }) });
}, 60_000);
afterAll(async () => {
  await db?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const stats = async (table: string) =>
  (
    await db.sql<{ dead: number; vacuums: number; analyzes: number }[]>`
      SELECT n_dead_tup::int AS dead, vacuum_count::int AS vacuums, analyze_count::int AS analyzes
      FROM pg_stat_user_tables WHERE relname = ${table}`
  )[0]!;

describe("embedded vacuum", () => {
  it("vacuums the table with the most dead rows first, then analyzes what only changed, then has nothing to do", async () => {
    const vacuum = createEmbeddedVacuum(db.sql);
    // Whatever the migrations left behind is worked off first.
    while (await vacuum.step()) {}
    await db.sql`CREATE TABLE churn (id int PRIMARY KEY, n int NOT NULL)`;
    await db.sql`CREATE TABLE quiet (id int PRIMARY KEY, n int NOT NULL)`;
    await db.sql`INSERT INTO churn SELECT g, 0 FROM generate_series(1, 2000) g`;
    await db.sql`INSERT INTO quiet SELECT g, 0 FROM generate_series(1, 500) g`;
    // Every churn row updated three times: 6,000 dead versions, far past 50 + 20 % of 2,000.
    for (let i = 0; i < 3; i++) await db.sql`UPDATE churn SET n = n + 1`;
    // quiet: a few updates, under the vacuum threshold (50 + 100) but over the analyze one (50 + 50).
    await db.sql`UPDATE quiet SET n = 1 WHERE id <= 120`;

    expect(await vacuum.step()).toEqual({ table: "public.churn", vacuumed: true });
    const churn = await stats("churn");
    expect(churn.dead).toBe(0);
    expect(churn.vacuums).toBe(1);
    expect(churn.analyzes).toBe(1); // VACUUM (ANALYZE)

    expect(await vacuum.step()).toEqual({ table: "public.quiet", vacuumed: false });
    const quiet = await stats("quiet");
    expect(quiet.analyzes).toBe(1);
    expect(quiet.vacuums).toBe(0);
    expect(quiet.dead).toBeGreaterThan(0); // analyzed, not vacuumed: under the vacuum threshold

    expect(await vacuum.step()).toBeUndefined();
  });

  it("is what a running embedded Tether does by itself (TETHER_PGLITE_VACUUM_S)", async () => {
    const { connectClient, startTestStack } = await import("../helpers/stack.js");
    const { captureLogger } = await import("../helpers/auth.js");
    const capture = captureLogger();
    const s = await startTestStack({ TETHER_PGLITE_VACUUM_S: "1" }, { log: capture.log });
    try {
      // 80 devices registered: the devices table is past the analyze threshold (50 + 10 % of its rows),
      // and the running Tether analyzes it without being asked.
      const { DeviceService } = await import("../../gen/tether/v1/device_service_pb.js");
      const devices = connectClient(s, DeviceService, "connect");
      for (let i = 0; i < 80; i++) await devices.createDevice({ deviceId: `vac-${i}`, device: { kind: { case: "led", value: {} } } });
      const done = await eventually(
        async () => capture.lines().find((l) => l.msg === "embedded database: table vacuumed or analyzed" && l.table === "public.devices"),
        30_000,
        "the devices table analyzed by the running Tether",
      );
      expect(done.vacuumed).toBe(false);
    } finally {
      await s.cleanup();
    }
  }, 60_000);
});
