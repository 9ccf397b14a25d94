import { afterAll, beforeAll, describe, it } from "vitest";
import { type RunningMosquitto, startMosquitto } from "../helpers/mosquitto.js";
import { freshDatabase } from "../helpers/postgres.js";
import { type Replica, startReplica } from "../helpers/replica.js";
import { scenarioDir, type ScenarioDir } from "./lib/fleet.js";
import { outageReplicaEnv, runOutage } from "./lib/outage.js";

/**
 * Scenario 2a: the MQTT broker (Mosquitto, persistence on) is killed -9 mid-run and started again.
 * It found that telemetry Mosquitto had acknowledged (PUBACK) but held only in memory, or queued
 * for a bridge with a clean session, died with it: hundreds of samples per run. Fixed by
 * end-to-end receipts: devices keep each batch until Tether has stored it, and resend it after the
 * reconnect (the summary counts the resends).
 */
let s: ScenarioDir;
let broker: RunningMosquitto;
let db: Awaited<ReturnType<typeof freshDatabase>>;
let r: Replica;

beforeAll(async () => {
  s = await scenarioDir("mqtt");
  broker = await startMosquitto({ certsDir: s.certsDir });
  db = await freshDatabase("tether_faults_mqtt");
  r = await startReplica("mqtt", { DATABASE_URL: db.url, MQTT_URL: broker.url, ...outageReplicaEnv(s) });
});
afterAll(async () => {
  await r?.stop();
  await broker?.stop();
  await db?.drop();
  await s?.cleanup();
});

describe("fault: MQTT broker restart mid-run", () => {
  it("loses no task and no sample, runs no task twice", async () => {
    await runOutage({
      scenario: "2a MQTT broker restart",
      prefix: "mqr",
      injected: "Mosquitto SIGKILL, down 2 s, started again on the same port and persistence",
      s,
      replica: r,
      databaseUrl: db.url,
      deviceUrl: broker.url,
      devices: 30,
      tasks: Number(process.env.FAULTS_OUTAGE_TASKS ?? 1500),
      inject: () => broker.restart({ hard: true, downMs: 2000 }),
    });
  });
});
