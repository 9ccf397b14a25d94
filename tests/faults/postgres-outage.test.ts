import { afterAll, beforeAll, describe, it } from "vitest";
import { type RunningMosquitto, startMosquitto } from "../helpers/mosquitto.js";
import { freshDatabase, TEST_POSTGRES_URL } from "../helpers/postgres.js";
import { type Replica, startReplica } from "../helpers/replica.js";
import { startTcpProxy, type TcpProxy } from "../helpers/tcp-proxy.js";
import { scenarioDir, type ScenarioDir } from "./lib/fleet.js";
import { outageReplicaEnv, runOutage } from "./lib/outage.js";

/** Scenario 2c: PostgreSQL unreachable for 30 s mid-run (a proxy between Tether and it is cut). */
const OUTAGE_MS = Number(process.env.FAULTS_PG_OUTAGE_MS ?? 30_000);

let s: ScenarioDir;
let broker: RunningMosquitto;
let db: Awaited<ReturnType<typeof freshDatabase>>;
let proxy: TcpProxy;
let r: Replica;

beforeAll(async () => {
  s = await scenarioDir("pg");
  broker = await startMosquitto({ certsDir: s.certsDir });
  db = await freshDatabase("tether_faults_pg");
  const pg = new URL(TEST_POSTGRES_URL);
  proxy = await startTcpProxy({ host: pg.hostname, port: Number(pg.port || 5432) });
  const url = new URL(db.url);
  url.port = String(proxy.port);
  r = await startReplica("pg", { DATABASE_URL: url.toString(), MQTT_URL: broker.url, ...outageReplicaEnv(s) });
});
afterAll(async () => {
  proxy?.restore();
  await r?.stop();
  await proxy?.close();
  await broker?.stop();
  await db?.drop();
  await s?.cleanup();
});

// It found postgres.js 3.4.9 bugs around reserved connections (tasks stuck QUEUED/SENT and
// hundreds of acknowledged samples never stored after the outage; the process killed by a write
// on a closed socket), fixed by patches/postgres+3.4.9.patch (see tests/services/transaction.test.ts).
// One broker-acknowledged sample was still missing in 1 of 4 runs after that; with end-to-end
// receipts the device resends whatever Tether has not stored.
describe("fault: PostgreSQL unreachable for 30 s mid-run", () => {
  it("loses no task and no sample, runs no task twice", async () => {
    await runOutage({
      scenario: "2c PostgreSQL outage",
      prefix: "pgo",
      injected: "TCP path to PostgreSQL cut (every connection dropped, new ones refused)",
      s,
      replica: r,
      databaseUrl: db.url,
      deviceUrl: broker.url,
      devices: 30,
      tasks: Number(process.env.FAULTS_OUTAGE_TASKS ?? 1500),
      async inject() {
        proxy.cut();
        await new Promise((res) => setTimeout(res, OUTAGE_MS));
        proxy.restore();
      },
    });
  });
});
