/**
 * The two backends of one filter AST agree: for handwritten and random filters, the devices the SQL
 * selects in PGlite (ListDevices, jobs, shares) are exactly those the in-memory evaluator accepts
 * (webhooks, WatchDevices), over the row as stored and over the Device message the API returns.
 */
import { create, type JsonValue, toJson } from "@bufbuild/protobuf";
import type { PGlite } from "@electric-sql/pglite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeviceSchema } from "../../gen/tether/v1/device_pb.js";
import { matchesFilter, parseDeviceFilter, subjectOf } from "../../src/core/devices/device-filter.js";
import { PRODUCTS, productByKindName } from "../../src/core/products/index.js";
import type { Sql } from "../../src/store/database.js";
import { whereFilter } from "../../src/store/device-filter-sql.js";
import { createDeviceStore, type DeviceRow, factsOf, toStored } from "../../src/store/device-store.js";
import { inProcessSql, migratedPglite } from "../helpers/pglite-in-process.js";

let db: PGlite;
let sql: Sql;
let rows: DeviceRow[];

/** A small deterministic generator, so a failure can be replayed. */
function rng(seed: number) {
  let s = seed >>> 0;
  const next = () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  return { next, pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]! };
}

const VERSIONS = ["", "1.9.3", "1.10.0", "1.10.0-beta.2", "1.10.0-beta.11", "1.10.0-rc.1", "1.10.0+build.7", "2.0.0", "0.1.0", "v1.2.3", "build-77"];
const SITES = ["north", "south", "east"];
const REPORTED: Record<string, JsonValue[]> = {
  led: [{}, { power: true, brightness: 40, mode: "LED_MODE_BLINK" }, { power: false }, { color: { red: 255 } }, { brightness: 0, mode: "LED_MODE_SOLID" }],
  coffee_machine: [{}, { power: true, waterLevelPercent: 5, status: "COFFEE_MACHINE_STATUS_IDLE" }, { beanLevelPercent: 80, currentBrew: {} }],
  thermostat: [
    {},
    { temperatureCelsius: 16.5, mode: "THERMOSTAT_MODE_HEAT" },
    { temperatureCelsius: 21, humidityPercent: 40, boostEndTime: "2024-06-01T10:00:00Z" },
    { temperatureCelsius: 18, action: "THERMOSTAT_ACTION_HEATING" },
    { mode: "THERMOSTAT_MODE_COOL" },
  ],
};

beforeAll(async () => {
  db = await migratedPglite();
  sql = inProcessSql(db);
  const store = createDeviceStore(sql);
  const r = rng(7);
  for (let i = 0; i < 60; i++) {
    const product = PRODUCTS[i % PRODUCTS.length]!;
    const labels: Record<string, string> = {};
    if (r.next() < 0.7) labels.site = r.pick(SITES);
    if (r.next() < 0.4) labels.room = r.pick(["kitchen", "hall"]);
    const id = `${product.kindName.replace("_", "-")}-${i}`;
    await store.insert(
      create(DeviceSchema, {
        name: `devices/${id}`,
        uid: crypto.randomUUID(),
        labels,
        owner: r.pick(["", "alice", "bob"]),
        displayName: r.pick(["", "Kitchen", "Hall"]),
        firmwareVersion: r.pick(VERSIONS),
        kind: { case: product.case, value: create(product.schema) } as never,
      }),
      new Date(Date.UTC(2024, 0, 1 + i)),
    );
    const seen = r.next() < 0.7 ? new Date(Date.UTC(2024, 4, 1 + Math.floor(r.next() * 60), 12)) : null;
    // A product added later (npm run new-product) has no sample states here: an empty one.
    const reported = r.pick(REPORTED[product.kindName] ?? [{}]);
    await sql`UPDATE devices SET online = ${r.next() < 0.5}, last_seen_time = ${seen}, reported = ${sql.json(reported)} WHERE id = ${id}`;
  }
  rows = await sql<DeviceRow[]>`SELECT * FROM devices ORDER BY id`;
}, 60_000);
afterAll(async () => {
  await sql.end();
  await db.close();
});

const HANDWRITTEN = [
  "",
  'kind = "led"',
  "labels.site = north OR labels.site = south",
  "kind = thermostat AND labels.site = north OR labels.room:*",
  "NOT (labels.site:* OR online = true)",
  "-labels.room = kitchen kind != led",
  'firmware_version < "1.10.0"',
  'firmware_version >= "1.10.0-beta.11"',
  'firmware_version = "1.10.0"',
  'firmware_version != "v1.2.3"',
  "firmware_version:*",
  "NOT firmware_version > 0.0.0",
  'last_seen_time > "2024-06-01T00:00:00Z"',
  'NOT last_seen_time < "2024-06-01T00:00:00Z"',
  "last_seen_time:*",
  'create_time <= "2024-01-20T00:00:00Z"',
  'display_name = "Kitchen" OR owner = alice',
  "thermostat.reported.temperature_celsius < 18",
  "thermostat.reported.temperature_celsius != 18",
  "NOT thermostat.reported.temperature_celsius >= 18",
  "thermostat.reported.mode = HEAT OR thermostat.reported.mode = THERMOSTAT_MODE_UNSPECIFIED",
  "thermostat.reported.humidity_percent:*",
  'thermostat.reported.boost_end_time > "2024-05-01T00:00:00Z"',
  "led.reported.power = true",
  "led.reported.power != false",
  "led.reported.brightness = 0",
  "led.reported.color.red > 100",
  "led.reported.mode = SOLID",
  "coffee_machine.reported.water_level_percent < 10",
  "coffee_machine.reported.current_brew.progress_percent = 0",
  "coffee_machine.reported.status != IDLE",
  "led.desired.brightness:*",
];

const ATOMS = [
  "kind = led",
  "kind != thermostat",
  "online = true",
  "labels.site = north",
  "labels.site != south",
  "labels.room:*",
  "owner = alice",
  'firmware_version < "1.10.0"',
  'firmware_version > "1.10.0-beta.2"',
  'firmware_version = "1.10.0"',
  'firmware_version <= "2.0.0"',
  'last_seen_time >= "2024-05-20T00:00:00Z"',
  "last_seen_time:*",
  "thermostat.reported.temperature_celsius > 17",
  "thermostat.reported.mode = COOL",
  "led.reported.brightness <= 40",
  "coffee_machine.reported.power = true",
];

function randomFilter(r: ReturnType<typeof rng>, depth = 0): string {
  const x = r.next();
  if (depth > 2 || x < 0.35) return r.pick(ATOMS);
  if (x < 0.5) return `NOT ${randomFilter(r, depth + 1)}`;
  const op = r.pick(["AND", "OR", ""]);
  return `(${randomFilter(r, depth + 1)} ${op} ${randomFilter(r, depth + 1)})`;
}

async function compare(filter: string) {
  const ast = parseDeviceFilter(filter);
  const inSql = (await sql<{ id: string }[]>`SELECT id FROM devices WHERE ${whereFilter(sql, ast)} ORDER BY id`).map((r) => r.id);
  const fromRows = rows.filter((r) => matchesFilter(ast, factsOf(r))).map((r) => r.id);
  const fromMessages = rows.filter((r) => matchesFilter(ast, subjectOf(toStored(r).device))).map((r) => r.id);
  expect(fromRows, `${filter}: rows`).toEqual(inSql);
  expect(fromMessages, `${filter}: Device messages`).toEqual(inSql);
  // ANDed with a caller's condition (as the rights scope is), an OR stays inside the filter.
  const scoped = (await sql<{ id: string }[]>`SELECT id FROM devices WHERE ${whereFilter(sql, ast)} AND kind = 'led' ORDER BY id`).map((r) => r.id);
  expect(scoped, `${filter}: AND kind = 'led'`).toEqual(inSql.filter((id) => id.startsWith("led-")));
  return inSql.length;
}

describe("SQL and in-memory evaluation agree", () => {
  it("on handwritten filters, which select something and not everything", async () => {
    let nonTrivial = 0;
    for (const f of HANDWRITTEN) {
      const n = await compare(f);
      if (n > 0 && n < rows.length) nonTrivial++;
    }
    expect(nonTrivial).toBeGreaterThan(HANDWRITTEN.length - 4);
  });

  it("on 300 random filters", async () => {
    const r = rng(42);
    for (let i = 0; i < 300; i++) await compare(randomFilter(r));
  }, 60_000);

  it("on every pair of the fleet's versions", async () => {
    const versions = [...new Set(rows.map((r) => r.firmware_version))].filter(Boolean);
    for (const v of versions.filter((x) => /^\d/.test(x) && x !== "build-77")) {
      for (const op of ["<", "<=", ">", ">=", "=", "!="]) await compare(`firmware_version ${op} "${v}"`);
    }
  }, 60_000);

  it("stores reported state the way the filter reads it", () => {
    // The fixtures above are protobuf JSON of the product messages: a round trip leaves them as they are.
    for (const r of rows) {
      const p = productByKindName(r.kind)!;
      const value = toStored(r).device.kind.value as { reported?: never };
      if (value.reported) expect(toJson(p.reportedSchema, value.reported)).toEqual(r.reported);
    }
  });
});
