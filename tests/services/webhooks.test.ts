import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { createClient } from "@connectrpc/connect";
import pino from "pino";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { WebhookService } from "../../gen/tether/v1/webhook_service_pb.js";
import { ensureDevPki } from "../../src/pki/dev-pki.js";
import { migrate } from "../../src/store/migrate.js";
import { eventually } from "../helpers/devices.js";
import { type RunningMosquitto, startMosquitto, writeCrl } from "../helpers/mosquitto.js";
import { freshDatabase } from "../helpers/postgres.js";
import { type Replica, startReplica } from "../helpers/replica.js";
import { transport } from "../helpers/stack.js";
import { type Receiver, startReceiver } from "../helpers/webhook-receiver.js";
import { describeWebhookBreaker, describeWebhookDelivery, describeWebhookRefusals, type SuiteDatabase } from "../helpers/webhook-suites.js";

const log = pino({ level: "silent" });

/** A fresh, migrated PostgreSQL 15 database per suite. */
const onPostgres: SuiteDatabase = async () => {
  const db = await freshDatabase("tether_webhooks");
  await migrate(db.url, log);
  return { env: { DATABASE_URL: db.url }, cleanup: () => db.drop() };
};

// The same suites as tests/integration/webhook*.test.ts (PGlite), here on PostgreSQL.
describeWebhookDelivery(onPostgres);
describeWebhookBreaker(onPostgres);
describeWebhookRefusals(onPostgres);

const sh = promisify(execFile);

/** Which process owns each local TCP port connected to `port` now (`ss -tnp`). */
async function sendersTo(port: number): Promise<Map<number, number>> {
  const { stdout } = await sh("ss", ["-tnpH", "dport", "=", `:${port}`]);
  const out = new Map<number, number>();
  for (const line of stdout.split("\n")) {
    const local = /^\S+\s+\d+\s+\d+\s+\S+:(\d+)\s/.exec(line)?.[1];
    const pid = /pid=(\d+)/.exec(line)?.[1];
    if (local && pid) out.set(Number(local), Number(pid));
  }
  return out;
}

describe("webhooks: two replicas on one PostgreSQL", () => {
  let dir: string;
  let broker: RunningMosquitto;
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let r: Receiver;
  const replicas: Replica[] = [];
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "tether-webhook-replicas-"));
    const certsDir = path.join(dir, "certs");
    const pki = await ensureDevPki(certsDir);
    await writeCrl(certsDir, []);
    broker = await startMosquitto({ certsDir });
    db = await freshDatabase("tether_webhook_replicas");
    await migrate(db.url, log);
    r = await startReceiver({ cert: pki.server.certPem, key: pki.server.keyPem });
    const env = {
      DATABASE_URL: db.url,
      MQTT_URL: broker.url,
      TETHER_CERTS_DIR: certsDir,
      TETHER_WEBHOOK_CA_FILE: path.join(certsDir, "ca.crt"),
      TETHER_WEBHOOK_ALLOW_HTTP: "1",
      TETHER_WEBHOOK_POLL_MS: "20",
    };
    replicas.push(...(await Promise.all(["a", "b"].map((n) => startReplica(`webhooks-${n}`, { ...env, TETHER_DATA_DIR: path.join(dir, `data-${n}`) })))));
  }, 120_000);
  afterAll(async () => {
    await Promise.all(replicas.map((x) => x.stop()));
    await r?.close();
    await broker?.stop();
    await db?.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("share the relay work and never send one delivery twice at the same time", async () => {
    const pki = await ensureDevPki(path.join(dir, "certs"));
    const pem = { ca: Buffer.from(pki.caPem), cert: Buffer.from(pki.admin.certPem), key: Buffer.from(pki.admin.keyPem) };
    const [a, b] = replicas as [Replica, Replica];
    const hooks = createClient(WebhookService, transport(a.baseUrl, "grpc", pem));
    const w = await hooks.createWebhook({ webhookId: "shared", webhook: { url: r.url, eventTypes: ["device.created"] } });
    r.secrets.push(w.secret);
    // A slow endpoint: each answer takes 100 ms, so a delivery sent by both replicas would overlap.
    r.delayMs = 100;
    const N = 200;
    const devicesOf = (x: Replica) => createClient(DeviceService, transport(x.baseUrl, "grpc", pem));
    const [da, db2] = [devicesOf(a), devicesOf(b)];
    for (let i = 0; i < N; i += 20)
      await Promise.all(
        Array.from({ length: 20 }, (_, k) => (k % 2 ? da : db2).createDevice({ deviceId: `shared-${i + k}`, device: { kind: { case: "led", value: {} } } })),
      );
    // Which replica sent what: the keep-alive connections' owners, sampled while they are open.
    const owners = new Map<number, number>();
    await eventually(
      async () => {
        for (const [port, pid] of await sendersTo(Number(new URL(r.url).port))) owners.set(port, pid);
        return r.ids().size === N;
      },
      60_000,
      "every event delivered",
    ).catch((err) => {
      const logs = replicas.flatMap((x) => x.logs.filter((l) => Number(l.level) >= 40).map((l) => `${x.name}: ${JSON.stringify(l)}`));
      throw new Error(`${String(err)}; received ${r.received.length} (${r.ids().size} distinct)\n${logs.slice(-20).join("\n")}`);
    });
    expect(r.overlaps).toBe(0);
    // Once each: no failure happened, so no delivery was retried, by either replica.
    expect(r.received.length).toBe(N);
    expect(r.received.every((x) => x.verified && x.answer === 200)).toBe(true);
    const senders = new Set(r.received.map((x) => owners.get(x.remotePort)).filter((p) => p !== undefined));
    expect(senders).toEqual(new Set([a.pid, b.pid]));
    const sql = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      // The receiver answers before the sender records: wait for the records.
      const states = async () => [...(await sql<{ state: string; n: number }[]>`SELECT state, count(*)::int AS n FROM webhook_deliveries GROUP BY state`)];
      await eventually(async () => JSON.stringify(await states()) === JSON.stringify([{ state: "DELIVERED", n: N }]), 10_000, "every delivery DELIVERED").catch(
        async () => {
          expect(await states()).toEqual([{ state: "DELIVERED", n: N }]);
        },
      );
    } finally {
      await sql.end();
    }
  }, 120_000);
});
