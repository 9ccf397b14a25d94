import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import mqtt from "mqtt";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConnectivityEvent_Reason as Reason } from "../../gen/tether/v1/connectivity_pb.js";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { connectDevice } from "../../src/device/tether-device.js";
import { ensureDevPki, issueDeviceCertificate } from "../../src/pki/dev-pki.js";
import { PRESENCE_OFFLINE, PRESENCE_ONLINE, presenceTopic } from "../../src/protocol/topics.js";
import { migrate } from "../../src/store/migrate.js";
import { eventually } from "../helpers/devices.js";
import { type RunningMosquitto, startMosquitto, writeCrl } from "../helpers/mosquitto.js";
import { freshDatabase } from "../helpers/postgres.js";
import { type RabbitNode, startRabbitNode } from "../helpers/rabbitmq-node.js";
import { connectClient, startTestStack, type TestStack } from "../helpers/stack.js";

/**
 * Presence on the external brokers, which tell Tether only what a device's retained presence says:
 * the SDK's heartbeat keeps a quiet device fresh (no keepalive reaches Tether), its `offline:clean`
 * is a clean goodbye, and a last will is a lost connection. On real PostgreSQL (the presence SQL).
 */
interface Conn {
  url: string;
  deviceId: string;
  cert: string;
  key: string;
  ca: string;
}

const PRESENCE_ENV = { TETHER_LIVENESS_INTERVAL_S: "1" };

function scenario(name: string, setup: () => Promise<{ stack: TestStack; conn(id: string): Promise<Conn>; cleanup(): Promise<void> }>) {
  describe(`presence on ${name}`, () => {
    let env: Awaited<ReturnType<typeof setup>>;
    beforeAll(async () => {
      env = await setup();
    }, 180_000);
    afterAll(() => env?.cleanup(), 120_000);

    const devices = () => connectClient(env.stack, DeviceService, "grpc");
    const connectivity = async (id: string) => (await devices().getDevice({ name: `devices/${id}` })).connectivity!;
    const lastReason = async (id: string) => (await connectivity(id)).lastEvent?.reason;
    const createLed = (id: string) => devices().createDevice({ deviceId: id, device: { kind: { case: "led", value: {} } } });

    it("keeps a quiet SDK device fresh with heartbeats alone, and records its clean goodbye", async () => {
      await createLed("hb-led");
      const device = await connectDevice({ ...(await env.conn("hb-led")), heartbeatIntervalMs: 300, handler: async () => ({}) });
      try {
        const first = await eventually(async () => {
          const c = await connectivity("hb-led");
          return c.online && c.lastUplinkTime && c;
        });
        const spoke = timestampDate(first.lastUplinkTime!).getTime();
        await eventually(
          async () => timestampDate((await connectivity("hb-led")).lastSeenTime!).getTime() >= spoke + 2000,
          15_000,
          "last_seen_time moved by heartbeats",
        );
        expect(device.heartbeats).toBeGreaterThan(2);
        // The Hello was its last message of its own.
        expect(timestampDate((await connectivity("hb-led")).lastUplinkTime!).getTime()).toBe(spoke);
      } finally {
        await device.close();
      }
      await eventually(async () => (await lastReason("hb-led")) === Reason.CLEAN, 10_000, "clean goodbye");
      expect((await connectivity("hb-led")).online).toBe(false);
    });

    it("records a device whose connection died (its last will) as connection lost", async () => {
      await createLed("will-led");
      const c = await env.conn("will-led");
      const client = await mqtt.connectAsync(c.url, {
        clientId: c.deviceId,
        cert: c.cert,
        key: c.key,
        ca: c.ca,
        protocolVersion: 4,
        reconnectPeriod: 0,
        will: { topic: presenceTopic(c.deviceId), payload: Buffer.from(PRESENCE_OFFLINE), qos: 1, retain: true },
      });
      client.on("error", () => {});
      await client.publishAsync(presenceTopic(c.deviceId), PRESENCE_ONLINE, { qos: 1, retain: true });
      await eventually(async () => (await connectivity("will-led")).online, 10_000, "online");
      client.stream.destroy();
      await eventually(async () => (await lastReason("will-led")) === Reason.CONNECTION_LOST, 15_000, "connection lost");
      const history = (await devices().listConnectivityEvents({ parent: "devices/will-led" })).connectivityEvents;
      expect(history.map((e) => e.reason)).toEqual([Reason.CONNECTION_LOST, Reason.CONNECTED]);
      expect(history.map((e) => e.remoteAddress)).toEqual(["", ""]); // an external broker does not say
    });
  });
}

scenario("Mosquitto (MQTT_URL) and PostgreSQL", async () => {
  const dir = await mkdtemp(path.join(tmpdir(), "tether-presence-mosq-"));
  const certsDir = path.join(dir, "certs");
  const pki = await ensureDevPki(certsDir);
  await writeCrl(certsDir, []);
  const broker: RunningMosquitto = await startMosquitto({ certsDir });
  const db = await freshDatabase("tether_presence_mosq");
  const stack = await startTestStack({ DATABASE_URL: db.url, MQTT_URL: broker.url, TETHER_CERTS_DIR: certsDir, ...PRESENCE_ENV });
  return {
    stack,
    async conn(deviceId) {
      const cert = await issueDeviceCertificate(pki.ca, deviceId);
      return { url: broker.url, deviceId, cert: cert.certPem, key: cert.keyPem, ca: pki.caPem };
    },
    async cleanup() {
      await stack.cleanup();
      await broker.stop();
      await db.drop();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

scenario("RabbitMQ's MQTT plugin (TETHER_DEVICE_LINK=amqp) and PostgreSQL", async () => {
  const pkiDir = await mkdtemp(path.join(tmpdir(), "tether-presence-rabbit-"));
  const pki = await ensureDevPki(pkiDir);
  const db = await freshDatabase("tether_presence_amqp");
  await migrate(db.url, pino({ level: "silent" }));
  const node: RabbitNode = await startRabbitNode({ caFile: pki.paths.ca, certFile: pki.paths.server.cert, keyFile: pki.paths.server.key });
  const stack = await startTestStack({
    DATABASE_URL: db.url,
    AMQP_URL: node.amqpUrl,
    TETHER_DEVICE_LINK: "amqp",
    TETHER_AMQP_PREFIX: "presence",
    TETHER_CERTS_DIR: pkiDir,
    ...PRESENCE_ENV,
  });
  return {
    stack,
    async conn(deviceId) {
      await node.provisionDevice(deviceId);
      const cert = await issueDeviceCertificate(pki.ca, deviceId);
      return { url: `mqtts://127.0.0.1:${node.mqttsPort}`, deviceId, cert: cert.certPem, key: cert.keyPem, ca: pki.caPem };
    },
    async cleanup() {
      await stack.cleanup();
      await node.cleanup();
      await db.drop();
      await rm(pkiDir, { recursive: true, force: true });
    },
  };
});
