import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import amqp from "amqplib";
import mqtt from "mqtt";
import pino from "pino";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CupSize, Recipe } from "../../gen/tether/v1/coffee_machine_pb.js";
import { DeviceService, WatchDevicesResponse_Type } from "../../gen/tether/v1/device_service_pb.js";
import { type Task, Task_State as State } from "../../gen/tether/v1/task_pb.js";
import { CreateTaskRequest_WaitFor as WaitFor, TaskService } from "../../gen/tether/v1/task_service_pb.js";
import { TelemetryService } from "../../gen/tether/v1/telemetry_service_pb.js";
import { metricTopic, uplinkTopic } from "../../src/protocol/topics.js";
import { ensureDevPki, issueDeviceCertificate, issueServiceCertificate, type DevPki } from "../../src/pki/dev-pki.js";
import { startCoffeeSim } from "../helpers/devices.js";
import { migrate } from "../../src/store/migrate.js";
import { coffeeSim, eventually } from "../helpers/devices.js";
import { freshDatabase } from "../helpers/postgres.js";
import { startRabbitNode, type RabbitNode } from "../helpers/rabbitmq-node.js";
import { CertificateService } from "../../gen/tether/v1/certificate_service_pb.js";
import { Grant_Role, ShareService } from "../../gen/tether/v1/share_service_pb.js";
import { bearerClient, userToken } from "../helpers/auth.js";
import { mqttConnect } from "../helpers/certificates.js";
import { connectClient, startTestStack } from "../helpers/stack.js";

/**
 * Tether on a real PostgreSQL and its own RabbitMQ node configured from deploy/rabbitmq/: devices
 * speak MQTT over TLS to RabbitMQ's MQTT plugin (certificate login, topic permissions), Tether
 * speaks AMQP. The node is this file's own, so it can be restarted.
 */
let db: Awaited<ReturnType<typeof freshDatabase>>;
let node: RabbitNode;
let pkiDir: string;
let pki: DevPki;

beforeAll(async () => {
  pkiDir = await mkdtemp(path.join(tmpdir(), "tether-rabbit-pki-"));
  pki = await ensureDevPki(pkiDir);
  db = await freshDatabase("tether_amqp");
  await migrate(db.url, pino({ level: "silent" }));
  node = await startRabbitNode({ caFile: pki.paths.ca, certFile: pki.paths.server.cert, keyFile: pki.paths.server.key });
}, 180_000);
afterAll(async () => {
  await node?.cleanup();
  await db?.drop();
  if (pkiDir) await rm(pkiDir, { recursive: true, force: true });
}, 120_000);

/** A Tether replica on the shared database, RabbitMQ and PKI, with devices on the MQTT plugin. */
const replica = (prefix: string, env: Record<string, string> = {}) =>
  startTestStack({
    DATABASE_URL: db.url,
    AMQP_URL: node.amqpUrl,
    TETHER_DEVICE_LINK: "amqp",
    TETHER_AMQP_PREFIX: prefix,
    TETHER_CERTS_DIR: pkiDir,
    TETHER_TASK_ACK_TIMEOUT_MS: "3000",
    ...env,
  });

/** A device identity from the shared CA, connecting to RabbitMQ's MQTT TLS listener. */
async function deviceConn(deviceId: string) {
  await node.provisionDevice(deviceId);
  const cert = await issueDeviceCertificate(pki.ca, deviceId);
  return { url: `mqtts://127.0.0.1:${node.mqttsPort}`, deviceId, cert: cert.certPem, key: cert.keyPem, ca: pki.caPem, reconnectPeriodMs: 200 };
}

const brew = {
  command: { kind: { case: "coffeeMachine" as const, value: { action: { case: "brew" as const, value: { recipe: Recipe.ESPRESSO, size: CupSize.SMALL } } } } },
};
const coffee = { kind: { case: "coffeeMachine" as const, value: {} } };

describe("Tether on PostgreSQL + RabbitMQ, devices on RabbitMQ's MQTT plugin", () => {
  it("runs the task scenario: offline queueing, delivery on connect, wait for completion, telemetry, topic permissions", async () => {
    const s = await replica("t1");
    try {
      const devices = connectClient(s, DeviceService, "grpc");
      const tasks = connectClient(s, TaskService, "grpc");
      await devices.createDevice({ deviceId: "rq-coffee", device: coffee });
      const conn = await deviceConn("rq-coffee");

      // Created while the device is offline: it waits, QUEUED, and is delivered when the device connects.
      const early = await tasks.createTask({ parent: "devices/rq-coffee", task: brew });
      expect(early.state).toBe(State.QUEUED);
      const { device } = await startCoffeeSim({ ...conn, brewMs: 200, cleanMs: 100 });
      try {
        await eventually(async () => (await tasks.getTask({ name: early.name })).state === State.SUCCEEDED, 30_000, "the queued task to succeed");
        const done = await tasks.createTask({ parent: "devices/rq-coffee", task: brew, waitFor: WaitFor.COMPLETED });
        expect(done.state).toBe(State.SUCCEEDED);
        expect(done.result?.kind.case).toBe("coffeeMachine");
        const d = await devices.getDevice({ name: "devices/rq-coffee" });
        expect(d.connectivity?.online).toBe(true);
        expect(d.kind.case === "coffeeMachine" && d.kind.value.reported?.status).toBeTruthy();

        await device.sendTelemetry([{ metric: "boiler_temperature_celsius", value: 93.5 }]);
        const telemetry = connectClient(s, TelemetryService, "grpc");
        await eventually(
          async () => (await telemetry.getLatestTelemetry({ parent: "devices/rq-coffee" })).samples.some((x) => x.value === 93.5),
          20_000,
          "the sample stored",
        );
      } finally {
        await device.close();
      }
      await eventually(
        async () => (await devices.getDevice({ name: "devices/rq-coffee" })).connectivity?.online === false,
        20_000,
        "offline after a graceful close",
      );

      // RabbitMQ's topic permissions: a device may publish only under its own id (3.10 closes the connection).
      const raw = await mqtt.connectAsync(conn.url, {
        clientId: "rq-coffee",
        ca: conn.ca,
        cert: conn.cert,
        key: conn.key,
        protocolVersion: 4,
        reconnectPeriod: 0,
      });
      const closed = new Promise<void>((r) => raw.once("close", () => r()));
      raw.publish(uplinkTopic("someone-else"), Buffer.from("x"), { qos: 1 });
      await closed;
      raw.end(true);
      // And only its own metrics topics; its own plain metric goes through.
      const raw2 = await mqtt.connectAsync(conn.url, {
        clientId: "rq-coffee",
        ca: conn.ca,
        cert: conn.cert,
        key: conn.key,
        protocolVersion: 4,
        reconnectPeriod: 0,
      });
      await raw2.publishAsync(metricTopic("rq-coffee", "room.temp"), "21.5", { qos: 1 });
      await raw2.endAsync();
      const telemetry = connectClient(s, TelemetryService, "grpc");
      await eventually(
        async () => (await telemetry.getLatestTelemetry({ parent: "devices/rq-coffee" })).samples.some((x) => x.metric === "room.temp" && x.value === 21.5),
        20_000,
        "a dotted metric name through amq.topic",
      );
    } finally {
      await s.cleanup();
    }
  }, 180_000);

  it("acknowledges an uplink message carrying telemetry only after its samples are stored", async () => {
    const s = await replica("t4", { TETHER_AMQP_UPLINK_PARTITIONS: "1" });
    const unacked = async () => {
      const out = await node.ctl("list_queues", "-q", "--no-table-headers", "name", "messages_unacknowledged");
      const line = out.split("\n").find((l) => l.startsWith("t4.uplink.0"));
      return Number(line?.split(/\s+/)[1] ?? NaN);
    };
    try {
      await connectClient(s, DeviceService, "grpc").createDevice({ deviceId: "rq-tele", device: coffee });
      const { device } = await startCoffeeSim({ ...(await deviceConn("rq-tele")), brewMs: 200 });
      try {
        await eventually(async () => (await unacked()) === 0, 30_000, "the connect-time uplink acked");
        s.app.telemetryWriter.pause(); // the database "does not commit" telemetry for now
        // Resolves on Tether's receipt, which waits for the commit as the AMQP ack does.
        let receipted = false;
        const sent = device.sendTelemetry([{ metric: "pressure_bar", value: 9.25 }]).then(() => void (receipted = true));
        // Processed, but held unacknowledged in RabbitMQ while its sample is not stored.
        await eventually(async () => (await unacked()) === 1, 30_000, "the telemetry message held unacked");
        const telemetry = connectClient(s, TelemetryService, "grpc");
        expect((await telemetry.getLatestTelemetry({ parent: "devices/rq-tele" })).samples.some((x) => x.metric === "pressure_bar")).toBe(false);
        expect(receipted).toBe(false);
        s.app.telemetryWriter.resume();
        await eventually(async () => (await unacked()) === 0, 30_000, "acked after the insert committed");
        await sent;
        expect((await telemetry.getLatestTelemetry({ parent: "devices/rq-tele" })).samples.some((x) => x.metric === "pressure_bar" && x.value === 9.25)).toBe(
          true,
        );
      } finally {
        await device.close();
      }
    } finally {
      await s.cleanup();
    }
  }, 180_000);

  it("fans changes out to every replica: a task created on A is watched to SUCCEEDED on B, and B takes over when A stops", async () => {
    const a = await replica("t2");
    const b = await replica("t2");
    const ac = new AbortController();
    try {
      await connectClient(a, DeviceService, "grpc").createDevice({ deviceId: "rq-multi", device: coffee });
      const conn = await deviceConn("rq-multi");
      const seen: Task[] = [];
      void (async () => {
        for await (const r of connectClient(b, TaskService, "grpc").watchTasks({ name: "devices/rq-multi", sendInitial: true }, { signal: ac.signal }))
          seen.push(r.task!);
      })().catch(() => {});

      // Created on A while the device is offline; B's stream shows it (snapshot or change), so B is watching.
      const created = await connectClient(a, TaskService, "grpc").createTask({ parent: "devices/rq-multi", task: brew });
      await eventually(async () => seen.some((t) => t.name === created.name), 20_000, "B's stream to show the task");
      const { device } = await startCoffeeSim({ ...conn, brewMs: 200, cleanMs: 100 });
      try {
        await eventually(async () => seen.some((t) => t.name === created.name && t.state === State.SUCCEEDED), 30_000, "SUCCEEDED on B's stream");
        const states = seen.filter((t) => t.name === created.name).map((t) => t.state);
        expect(states).toContain(State.DELIVERED); // changes, not only a snapshot: they crossed the bus
        expect(new Set(seen.filter((t) => t.name === created.name && t.state === State.SUCCEEDED).map((t) => t.name)).size).toBe(1);

        // A stops: B takes over the uplink queues (single active consumer) and serves alone.
        await a.app.stop();
        const onB = await connectClient(b, TaskService, "grpc").createTask({
          parent: "devices/rq-multi",
          task: brew,
          waitFor: WaitFor.COMPLETED,
          waitTimeout: { seconds: 60n },
        });
        expect(onB.state).toBe(State.SUCCEEDED);
      } finally {
        await device.close();
      }
    } finally {
      ac.abort();
      await b.cleanup();
      await a.cleanup();
    }
  }, 240_000);

  it("carries device changes across replicas: WatchDevices on B sees a create, an update and a delete made on A", async () => {
    const a = await replica("t6");
    const b = await replica("t6");
    const ac = new AbortController();
    try {
      const seen: string[] = [];
      let deleteTime = false;
      void (async () => {
        for await (const r of connectClient(b, DeviceService, "grpc").watchDevices({ filter: 'labels.test = "t6"' }, { signal: ac.signal })) {
          seen.push(`${WatchDevicesResponse_Type[r.type]} ${r.device?.name ?? ""}`.trim());
          if (r.device?.deleteTime) deleteTime = true;
        }
      })().catch(() => {});
      await eventually(async () => seen.includes("INITIAL_COMPLETE"), 20_000, "B's snapshot");
      const onA = connectClient(a, DeviceService, "grpc");
      await onA.createDevice({ deviceId: "rq-watch", device: { labels: { test: "t6" }, ...coffee } });
      await onA.updateDevice({ device: { name: "devices/rq-watch", labels: { test: "t6", x: "1" } }, updateMask: { paths: ["labels"] } });
      await onA.deleteDevice({ name: "devices/rq-watch" });
      await eventually(async () => seen.includes("DELETED devices/rq-watch"), 20_000, "the deletion on B's stream");
      expect(seen.filter((e) => e.endsWith("rq-watch"))).toEqual(["CHANGED devices/rq-watch", "CHANGED devices/rq-watch", "DELETED devices/rq-watch"]);
      expect(deleteTime).toBe(true);
    } finally {
      ac.abort();
      await b.cleanup();
      await a.cleanup();
    }
  }, 240_000);

  it("also carries the embedded broker's uplink: MQTT bridge → durable queues, with the feeds on RabbitMQ", async () => {
    const s = await replica("t5", { TETHER_DEVICE_LINK: "embedded" });
    try {
      expect(s.app.mqttPort).toBeGreaterThan(0);
      await connectClient(s, DeviceService, "grpc").createDevice({ deviceId: "rq-embedded", device: coffee });
      const { device } = await coffeeSim(s, "rq-embedded", { brewMs: 200 });
      try {
        const t = await connectClient(s, TaskService, "grpc").createTask({ parent: "devices/rq-embedded", task: brew, waitFor: WaitFor.COMPLETED });
        expect(t.state).toBe(State.SUCCEEDED);
        const queues = await node.ctl("list_queues", "-q", "--no-table-headers", "name", "type");
        expect(queues).toMatch(/t5\.uplink\.0\s+quorum/);
        expect(queues).not.toMatch(/t5\.device-uplink/); // the MQTT bridge feeds the intake directly
      } finally {
        await device.close();
      }
    } finally {
      await s.cleanup();
    }
  }, 120_000);

  it("carries revocations and shares to every replica: a certificate revoked on A is cut on B's broker at once", async () => {
    // Both replicas run their own embedded broker; only RabbitMQ connects them.
    const env = { TETHER_DEVICE_LINK: "embedded", TETHER_RIGHTS_CACHE_MS: "60000" };
    const a = await replica("t6", env);
    const b = await replica("t6", env);
    try {
      await connectClient(a, DeviceService, "grpc").createDevice({ deviceId: "rq-revoke", device: coffee });
      const { certificate, privateKeyPem } = await connectClient(a, CertificateService, "grpc").createCertificate({
        parent: "devices/rq-revoke",
        generateKey: true,
      });
      const { client } = await mqttConnect(b, "rq-revoke", certificate!.certificatePem, privateKeyPem);
      expect(client?.connected).toBe(true);
      let closed = false;
      client!.on("close", () => (closed = true));
      await connectClient(a, CertificateService, "grpc").revokeCertificate({ name: certificate!.name });
      await eventually(async () => closed, 5_000, "B's broker to cut the session of a certificate revoked on A");
      client!.end(true);
      expect((await mqttConnect(b, "rq-revoke", certificate!.certificatePem, privateKeyPem)).client).toBeUndefined();

      // A share made on A applies on B before B's rights cache (60 s here) would have expired.
      const token = await userToken(a, "rq-ursula");
      const onB = bearerClient(b, DeviceService, token);
      expect((await onB.listDevices({})).devices).toHaveLength(0);
      await connectClient(a, ShareService, "grpc").createGrant({
        grant: { principal: "users/rq-ursula", target: { case: "device", value: "devices/rq-revoke" }, role: Grant_Role.VIEWER },
      });
      await eventually(async () => (await onB.listDevices({})).devices.length === 1, 5_000, "the share made on A to apply on B");
    } finally {
      await b.cleanup();
      await a.cleanup();
    }
  }, 120_000);

  it("has least-privilege accounts only and speaks AMQP over TLS only (deploy/rabbitmq/rabbitmq.conf)", async () => {
    await node.provisionDevice("rq-accounts");
    const rows = (await node.ctl("-q", "list_users", "--no-table-headers"))
      .trim()
      .split("\n")
      .map((l) => l.trim().split(/\s+/));
    expect(rows.map(([u]) => u)).not.toContain("guest");
    expect(rows.find(([u]) => u === "tether")?.[1]).toBe("[]"); // no administrator tag
    for (const [user, tags] of rows) if (user !== "tether") expect(tags, user).toBe("[tether-device]");
    // No plain AMQP listener, and AMQPS only with a client certificate from the CA.
    await expect(amqp.connect(node.amqpUrl.replace("amqps:", "amqp:"), { timeout: 5000 })).rejects.toThrow();
    await expect(amqp.connect(node.amqpUrl, { ca: [pki.caPem], timeout: 5000 })).rejects.toThrow();
    const service = await issueServiceCertificate(pki.ca, "tether");
    const conn = await amqp.connect(node.amqpUrl, { ca: [pki.caPem], cert: service.certPem, key: service.keyPem, timeout: 5000 });
    try {
      // Tether's account may not touch a device's MQTT session queue.
      const ch = await conn.createChannel();
      ch.on("error", () => {});
      await expect(ch.assertQueue("mqtt-subscription-rq-accountsqos1", { durable: true })).rejects.toThrow(/ACCESS.REFUSED/);
    } finally {
      await conn.close().catch(() => {});
    }
  });

  it("recovers from a RabbitMQ crash and restart mid-run: every task completes, no acknowledged sample is lost", async () => {
    const s = await replica("t3");
    const sql = postgres(db.url, { max: 1, onnotice: () => {} });
    const ids = ["rq-crash-1", "rq-crash-2"];
    const sims: Awaited<ReturnType<typeof startCoffeeSim>>[] = [];
    let sending = true;
    const acknowledged = new Map<string, number>(); // device → samples Tether receipted
    try {
      const devices = connectClient(s, DeviceService, "grpc");
      const tasks = connectClient(s, TaskService, "grpc");
      for (const id of ids) {
        await devices.createDevice({ deviceId: id, device: coffee });
        sims.push(await startCoffeeSim({ ...(await deviceConn(id)), brewMs: 300, cleanMs: 100, waterPercent: 100 }));
      }
      // Telemetry from each device, every 50 ms, with distinct times; counted once receipted.
      const senders = sims.map(({ device }, i) =>
        (async () => {
          let n = 0;
          while (sending) {
            const p = device.sendTelemetry([{ metric: "seq", value: n++ }]);
            void p.then(
              () => acknowledged.set(ids[i]!, (acknowledged.get(ids[i]!) ?? 0) + 1),
              () => {},
            );
            await new Promise((r) => setTimeout(r, 50));
          }
        })(),
      );

      const create = (id: string) => tasks.createTask({ parent: `devices/${id}`, task: brew });
      const before = await Promise.all(ids.flatMap((id) => [create(id), create(id), create(id)]));
      await eventually(async () => (await tasks.getTask({ name: before[0]!.name })).state === State.SUCCEEDED, 30_000, "a first task done");

      // SIGKILL the broker with tasks in flight, create more while it is down, then start it again.
      const restarted = node.restart({ hard: true, downMs: 500 });
      await new Promise((r) => setTimeout(r, 300));
      const during = await Promise.all(ids.map((id) => create(id)));
      await restarted;
      const after = await Promise.all(ids.map((id) => create(id)));

      const all = [...before, ...during, ...after];
      await eventually(
        async () => {
          const states = await Promise.all(all.map(async (t) => (await tasks.getTask({ name: t.name })).state));
          return states.every((st) => st === State.SUCCEEDED);
        },
        150_000,
        "every task to succeed after the restart",
      );

      sending = false;
      await Promise.all(senders);
      await eventually(async () => sims.every(({ device }) => device.connected), 30_000, "devices reconnected");
      // Everything receipted is in the database (and the receipts kept coming after the restart).
      for (const id of ids) {
        const expected = acknowledged.get(id) ?? 0;
        expect(expected).toBeGreaterThan(10);
        await eventually(
          async () => {
            const [{ n }] = await sql<{ n: number }[]>`SELECT count(DISTINCT value)::int AS n FROM telemetry WHERE device_id = ${id} AND metric = 'seq'`;
            return n >= expected;
          },
          60_000,
          `${expected} acknowledged samples of ${id} stored`,
        );
      }
    } finally {
      sending = false;
      for (const { device } of sims) await device.close({ abrupt: true });
      await sql.end();
      await s.cleanup();
    }
  }, 360_000);
});
