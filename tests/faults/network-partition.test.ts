import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConnectivityEvent_Reason as Reason } from "../../gen/tether/v1/connectivity_pb.js";
import { eventually } from "../helpers/devices.js";
import { type RunningMosquitto, startMosquitto } from "../helpers/mosquitto.js";
import { freshDatabase } from "../helpers/postgres.js";
import { type Replica, startReplica } from "../helpers/replica.js";
import { startTcpProxy, type TcpProxy } from "../helpers/tcp-proxy.js";
import { clients, scenarioDir, type ScenarioDir } from "./lib/fleet.js";
import { outageReplicaEnv, runOutage } from "./lib/outage.js";

/**
 * Scenario 3: the network between Tether and the broker drops every packet (a proxy that stops
 * forwarding without closing anything) for longer than the bridge's keepalive, while the devices
 * stay connected to the broker. Presence must report them offline meanwhile; after the heal they
 * are online again and every task created before or during the partition runs exactly once, and
 * every sample the devices sent is stored. With the kept session used here the broker queues the
 * uplink while Tether is cut off; `FAULTS_PARTITION_SESSION_S=0` (a clean session) shows the
 * devices' resends recovering what the broker dropped.
 */
const KEEPALIVE_S = 2;
const PARTITION_MS = Number(process.env.FAULTS_PARTITION_MS ?? 12_000);

let s: ScenarioDir;
let broker: RunningMosquitto;
let db: Awaited<ReturnType<typeof freshDatabase>>;
let proxy: TcpProxy;
let r: Replica;

beforeAll(async () => {
  s = await scenarioDir("part");
  broker = await startMosquitto({ certsDir: s.certsDir });
  db = await freshDatabase("tether_faults_partition");
  proxy = await startTcpProxy({ host: "127.0.0.1", port: broker.port });
  const viaProxy = new URL(broker.url);
  viaProxy.port = String(proxy.port);
  r = await startReplica("part", {
    DATABASE_URL: db.url,
    MQTT_URL: viaProxy.toString(),
    TETHER_MQTT_KEEPALIVE_S: String(KEEPALIVE_S),
    // The configuration the README recommends against partitions: a kept session under a stable
    // client id, so the broker queues the uplink while Tether is cut off.
    TETHER_MQTT_SESSION_EXPIRY_S: String(process.env.FAULTS_PARTITION_SESSION_S ?? 120),
    MQTT_CLIENT_ID: "tether-partition-a",
    ...outageReplicaEnv(s),
  });
});
afterAll(async () => {
  proxy?.restore();
  await r?.stop();
  await proxy?.close();
  await broker?.stop();
  await db?.drop();
  await s?.cleanup();
});

describe("fault: network partition between Tether and the broker", () => {
  it("reports the devices offline while it lasts; afterwards they get every task, once", async () => {
    const c = clients(r, s.pem);
    const prefix = "npt";
    const onlineIds = async () =>
      (await c.devices.listDevices({ filter: "online = true", pageSize: 1000 })).devices.map((d) => d.name).filter((n) => n.startsWith(`devices/${prefix}-`));
    /** The reason of each fleet device's latest connectivity change, de-duplicated. */
    const lastReasons = async () =>
      new Set(
        (await c.devices.listDevices({ pageSize: 1000 })).devices
          .filter((d) => d.name.startsWith(`devices/${prefix}-`))
          .map((d) => Reason[d.connectivity?.lastEvent?.reason ?? Reason.UNSPECIFIED]),
      );
    const extra: Record<string, string | number> = {};
    await runOutage({
      scenario: "3 network partition Tether-broker",
      prefix,
      injected: `every packet between Tether and Mosquitto dropped (bridge keepalive ${KEEPALIVE_S} s)`,
      s,
      replica: r,
      databaseUrl: db.url,
      deviceUrl: broker.url,
      devices: 30,
      tasks: Number(process.env.FAULTS_OUTAGE_TASKS ?? 1500),
      extra,
      async inject() {
        expect((await onlineIds()).length).toBe(30);
        const start = Date.now();
        proxy.partition();
        await eventually(async () => (await onlineIds()).length === 0, PARTITION_MS, "every device reported offline during the partition");
        extra["offline after"] = `${((Date.now() - start) / 1000).toFixed(1)} s`;
        // Tether lost the broker, not the devices: that is the reason recorded for every one.
        expect(await lastReasons()).toEqual(new Set(["BROKER_LOST"]));
        await new Promise((res) => setTimeout(res, Math.max(0, start + PARTITION_MS - Date.now())));
        // Still offline at the end: nothing the partition hid was taken for a sign of life.
        expect(await onlineIds()).toEqual([]);
        proxy.restore();
        const healed = Date.now();
        await eventually(async () => (await onlineIds()).length === 30, 30_000, "every device online again after the heal");
        extra["online again after heal"] = `${((Date.now() - healed) / 1000).toFixed(1)} s`;
        // Back because the link is, not because the devices reconnected (they never left).
        expect(await lastReasons()).toEqual(new Set(["BROKER_RESTORED"]));
        const [device] = (await c.devices.listDevices({ filter: "online = true", pageSize: 1000 })).devices.filter((d) =>
          d.name.startsWith(`devices/${prefix}-`),
        );
        const history = (await c.devices.listConnectivityEvents({ parent: device!.name, pageSize: 2 })).connectivityEvents;
        expect(history.map((e) => Reason[e.reason])).toEqual(["BROKER_RESTORED", "BROKER_LOST"]);
      },
    });
  });
});
