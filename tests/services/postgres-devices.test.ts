import { Code } from "@connectrpc/connect";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { matchesFilter, parseDeviceFilter, subjectOf } from "../../src/core/devices/device-filter.js";
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

  it("answers the fleet query as the in-memory evaluator does, semver and reported state included", async () => {
    const c = connectClient(s, DeviceService, "grpc");
    const versions = ["1.9.3", "1.10.0", "1.10.0-beta.2", "1.10.0-beta.11", "2.0.0+7", "build-77", ""];
    for (const [i, v] of versions.entries()) {
      const kind = i % 2 === 0 ? { case: "thermostat" as const, value: {} } : { case: "led" as const, value: {} };
      await c.createDevice({ deviceId: `fq-${i}`, device: { firmwareVersion: v, labels: i % 3 === 0 ? { site: "north" } : {}, kind } });
    }
    // Reported state and presence as devices would have left them (written directly, as protobuf JSON).
    const sql = postgres(db.url, { max: 1 });
    await sql`UPDATE devices SET reported = ${sql.json({ temperatureCelsius: 16.5, mode: "THERMOSTAT_MODE_HEAT" })}, last_seen_time = '2024-06-01T00:00:00Z' WHERE id = 'fq-0'`;
    await sql`UPDATE devices SET reported = ${sql.json({ temperatureCelsius: 22 })} WHERE id = 'fq-2'`;
    await sql`UPDATE devices SET reported = ${sql.json({ power: true, brightness: 0 })}, online = true WHERE id = 'fq-1'`;
    await sql.end();
    const all = (await c.listDevices({ filter: 'name != "devices/pg-led" AND name != "devices/pg-coffee"', pageSize: 100 })).devices;
    const filters = [
      'firmware_version < "1.10.0"',
      'firmware_version >= "1.10.0-beta.11" OR firmware_version = "build-77"',
      "NOT firmware_version > 0.0.1 AND firmware_version:*",
      "thermostat.reported.temperature_celsius < 18 OR led.reported.brightness = 0",
      "thermostat.reported.mode = THERMOSTAT_MODE_UNSPECIFIED",
      'labels.site = north AND NOT last_seen_time > "2024-01-01T00:00:00Z"',
      "(kind = led OR labels.site:*) -online = true",
    ];
    for (const f of filters) {
      const listed = (await c.listDevices({ filter: `(${f}) AND name != "devices/pg-led" AND name != "devices/pg-coffee"`, pageSize: 100 })).devices.map(
        (d) => d.name,
      );
      const ast = parseDeviceFilter(f);
      expect(listed, f).toEqual(all.filter((d) => matchesFilter(ast, subjectOf(d))).map((d) => d.name));
      expect(listed.length, `${f} selects something`).toBeGreaterThan(0);
    }
    const count = await c.countDevices({ filter: "NOT kind = coffee_machine", groupBy: "firmware_version" });
    expect(count.groups.map((g) => g.value)).toEqual(["2.0.0+7", "1.10.0", "1.10.0-beta.11", "1.10.0-beta.2", "1.9.3", "", "build-77"]);
    expect(count.totalCount).toBe(8n); // and pg-led, with no version
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
