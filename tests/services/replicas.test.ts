import { execFile } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { createClient } from "@connectrpc/connect";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { Task_State as State } from "../../gen/tether/v1/task_pb.js";
import { TaskService } from "../../gen/tether/v1/task_service_pb.js";
import { ensureDevPki, issueDeviceCertificate } from "../../src/pki/dev-pki.js";
import { startLedSim } from "../helpers/devices.js";
import { eventually } from "../helpers/devices.js";
import { type RunningMosquitto, startMosquitto, writeCrl } from "../helpers/mosquitto.js";
import { freshDatabase } from "../helpers/postgres.js";
import { metricValue, type Replica, startReplica } from "../helpers/replica.js";
import { transport } from "../helpers/stack.js";

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, "../..");
const BIN = path.join(ROOT, "bin/tether.js");
const DEVICES = 6;

let dir: string;
let certsDir: string;
let broker: RunningMosquitto;
let db: Awaited<ReturnType<typeof freshDatabase>>;
const replicas: Replica[] = [];
const sims: Array<Awaited<ReturnType<typeof startLedSim>>> = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "tether-replicas-"));
  certsDir = path.join(dir, "certs");
  await ensureDevPki(certsDir);
  await writeCrl(certsDir, []);
  broker = await startMosquitto({ certsDir });
  db = await freshDatabase("tether_replicas");
}, 120_000);
afterAll(async () => {
  await Promise.all(sims.map((s) => s.device.close()));
  await Promise.all(replicas.map((r) => r.stop()));
  await broker?.stop();
  await db?.drop();
  await rm(dir, { recursive: true, force: true });
});

describe("replicas: several `tether serve` on one PostgreSQL and Mosquitto", () => {
  it("migrates once when `tether migrate` runs three times at once", async () => {
    const env = { ...process.env, DATABASE_URL: db.url, LOG_LEVEL: "warn" };
    const outs = await Promise.all([0, 1, 2].map(() => run(process.execPath, [BIN, "migrate"], { env })));
    const migrations = (await readdir(path.join(ROOT, "migrations"))).filter((f) => f.endsWith(".sql")).length;
    expect(outs.filter((o) => o.stdout.includes(`applied ${migrations} migration(s)`))).toHaveLength(1);
    expect(outs.filter((o) => o.stdout.includes("up to date"))).toHaveLength(2);
    const sql = postgres(db.url, { max: 1 });
    try {
      expect((await sql`SELECT count(*)::int AS n FROM pgmigrations`)[0]!.n).toBe(migrations);
    } finally {
      await sql.end();
    }
  }, 120_000);

  it("splits uplink across replicas and loses or repeats no task when one is killed -9", async () => {
    const env = {
      DATABASE_URL: db.url,
      MQTT_URL: broker.url,
      TETHER_CERTS_DIR: certsDir,
      TETHER_TASK_SWEEP_MS: "200",
      TETHER_TASK_ACK_TIMEOUT_MS: "2000",
      LOG_LEVEL: "info",
    };
    replicas.push(...(await Promise.all(["a", "b", "c"].map((n) => startReplica(n, { ...env, TETHER_DATA_DIR: path.join(dir, `data-${n}`) })))));
    const [a, b, c] = replicas as [Replica, Replica, Replica];
    const pki = await ensureDevPki(certsDir);
    const pem = { ca: Buffer.from(pki.caPem), cert: Buffer.from(pki.admin.certPem), key: Buffer.from(pki.admin.keyPem) };
    const devicesA = createClient(DeviceService, transport(a.baseUrl, "grpc", pem));
    const tasksA = createClient(TaskService, transport(a.baseUrl, "grpc", pem));
    const tasksC = createClient(TaskService, transport(c.baseUrl, "grpc", pem));

    for (let i = 0; i < DEVICES; i++) {
      const id = `rep-led-${i}`;
      await devicesA.createDevice({ deviceId: id, device: { kind: { case: "led", value: {} } } });
      const cert = await issueDeviceCertificate(pki.ca, id);
      sims.push(await startLedSim({ url: broker.url, deviceId: id, cert: cert.certPem, key: cert.keyPem, ca: pki.caPem, reconnectPeriodMs: 200 }));
    }
    const created: string[] = [];
    const createSome = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const t = await tasksA.createTask({
          parent: `devices/rep-led-${created.length % DEVICES}`,
          task: {
            command: { kind: { case: "led", value: { action: { case: "setBrightness", value: created.length % 101 } } } },
            executionTimeout: { seconds: 3n },
            maxAttempts: 10,
          },
        });
        created.push(t.name);
      }
    };
    const allSucceeded = (names: string[], timeoutMs: number) =>
      eventually(
        async () => (await Promise.all(names.map((name) => tasksC.getTask({ name })))).every((t) => t.state === State.SUCCEEDED),
        timeoutMs,
        "every task SUCCEEDED",
      );

    // Phase 1: every replica takes a share of the uplink (acks and results of tasks created on A).
    await createSome(60);
    await allSucceeded(created, 60_000);
    const received = await Promise.all(
      replicas.map(async (r) => metricValue(await (await fetch(`${r.opsUrl}/metrics`)).text(), "tether_uplink_received_total")),
    );
    for (const [i, n] of received.entries()) expect(n, `uplink processed by replica ${replicas[i]!.name}`).toBeGreaterThan(0);
    const total = received.reduce((x, y) => x + y, 0);
    // Acks and results: at least two per task across the group, each taken by one replica only.
    expect(total).toBeGreaterThanOrEqual(120);

    // Phase 2: B dies without any shutdown code while tasks are in flight.
    const before = created.length;
    const creating = createSome(90);
    await eventually(async () => created.length >= before + 20, 30_000, "tasks being created");
    const bTookBeforeCrash = metricValue(await (await fetch(`${b.opsUrl}/metrics`)).text(), "tether_uplink_received_total");
    await b.crash();
    await creating;
    if (process.env.TEST_VERBOSE) console.log({ phase1: received, bTookBeforeCrash });
    await allSucceeded(created, 120_000);

    // Nothing lost, nothing run twice: every task ran exactly once on its device.
    const executions = new Map<string, number>();
    for (const s of sims) for (const [id, n] of s.device.executions) executions.set(id, n);
    const ids = created.map((n) => n.split("/")[3]!);
    expect(ids.filter((id) => executions.get(id) !== 1)).toEqual([]);
    expect(executions.size).toBe(ids.length);
  }, 300_000);
});
