import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { type Client, Code, ConnectError, createClient } from "@connectrpc/connect";
import postgres from "postgres";
import { DeviceService } from "../../../gen/tether/v1/device_service_pb.js";
import { TaskService } from "../../../gen/tether/v1/task_service_pb.js";
import { ensureDevPki, issueDeviceCertificate } from "../../../src/pki/dev-pki.js";
import { startLedSim } from "../../helpers/devices.js";
import { writeCrl } from "../../helpers/mosquitto.js";
import type { Replica } from "../../helpers/replica.js";
import { transport } from "../../helpers/stack.js";

/** A temp dir with the dev PKI (CA, admin, an empty CRL) every process of a scenario shares. */
export async function scenarioDir(prefix: string) {
  const dir = await mkdtemp(path.join(tmpdir(), `tether-faults-${prefix}-`));
  const certsDir = path.join(dir, "certs");
  const pki = await ensureDevPki(certsDir);
  await writeCrl(certsDir, []);
  const pem = { ca: Buffer.from(pki.caPem), cert: Buffer.from(pki.admin.certPem), key: Buffer.from(pki.admin.keyPem) };
  return { dir, certsDir, pki, pem, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
export type ScenarioDir = Awaited<ReturnType<typeof scenarioDir>>;

export function clients(r: Replica, pem: ScenarioDir["pem"]) {
  const t = transport(r.baseUrl, "grpc", pem);
  return { devices: createClient(DeviceService, t), tasks: createClient(TaskService, t) };
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function pool<T>(items: T[], limit: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i]!, i);
      }
    }),
  );
}

/** Simulated LEDs on `url`, each counting the tasks it executed (by task id). */
export async function startFleet(url: string, s: ScenarioDir, ids: string[], devices: Client<typeof DeviceService>) {
  await pool(ids, 16, async (id) => {
    await devices.createDevice({ deviceId: id, device: { kind: { case: "led", value: {} } } });
  });
  const sims: Array<Awaited<ReturnType<typeof startLedSim>>> = [];
  await pool(ids, 16, async (id) => {
    const cert = await issueDeviceCertificate(s.pki.ca, id);
    sims.push(await startLedSim({ url, deviceId: id, cert: cert.certPem, key: cert.keyPem, ca: s.pki.caPem, reconnectPeriodMs: 500 }));
  });
  return {
    /** In connect order, not in `ids` order: use `sim.device.deviceId`. */
    sims,
    /** Task id → how many times a device executed it. */
    executions(): Map<string, number> {
      const all = new Map<string, number>();
      for (const sim of sims) for (const [id, n] of sim.device.executions) all.set(id, (all.get(id) ?? 0) + n);
      return all;
    },
    async close() {
      await Promise.all(sims.map((x) => x.device.close().catch(() => {})));
    },
  };
}
export type Fleet = Awaited<ReturnType<typeof startFleet>>;

/**
 * Creates `total` LED tasks round-robin over `devices`, `concurrency` at a time, alternating
 * between the replicas' task clients. Each task has a request id: a create that fails for any
 * reason but a validation error is retried (same request id, next replica) until it is accepted,
 * so every intended task is accepted exactly once even when a replica dies mid-call.
 */
export async function pumpTasks(o: {
  tasks: () => Array<Client<typeof TaskService>>;
  devices: string[];
  total: number;
  concurrency: number;
  runId: string;
  onAccepted?: (n: number) => void;
  executionTimeoutS?: number;
}): Promise<{ accepted: Map<string, string>; retries: number }> {
  const accepted = new Map<string, string>(); // task id → device id
  let retries = 0;
  const idx = Array.from({ length: o.total }, (_, i) => i);
  await pool(idx, o.concurrency, async (i) => {
    const device = o.devices[i % o.devices.length]!;
    for (let attempt = 0; ; attempt++) {
      const cs = o.tasks();
      const c = cs[(i + attempt) % cs.length]!;
      try {
        const t = await c.createTask({
          parent: `devices/${device}`,
          requestId: `${o.runId}-${i}`,
          task: {
            command: { kind: { case: "led", value: { action: { case: "setBrightness", value: i % 101 } } } },
            executionTimeout: { seconds: BigInt(o.executionTimeoutS ?? 60) },
            maxAttempts: 10,
          },
          ttl: { seconds: 3600n },
        });
        accepted.set(t.name.split("/")[3]!, device);
        o.onAccepted?.(accepted.size);
        return;
      } catch (err) {
        const code = ConnectError.from(err).code;
        if (code === Code.InvalidArgument || attempt > 200) throw err;
        retries++;
        await new Promise((r) => setTimeout(r, Math.min(2000, 50 * (attempt + 1))));
      }
    }
  });
  return { accepted, retries };
}

/** Task states straight from the database, by id. */
export async function taskStates(databaseUrl: string): Promise<Map<string, string>> {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  try {
    const rows = await sql<Array<{ id: string; state: string }>>`SELECT id::text, state FROM tasks`;
    return new Map(rows.map((r) => [r.id, r.state]));
  } finally {
    await sql.end();
  }
}

export const FINAL = new Set(["SUCCEEDED", "FAILED", "CANCELED", "EXPIRED"]);

/**
 * The verdict on a run: `lost` = accepted tasks missing from the database, or that ended without
 * ever having been executed, or never executed although SUCCEEDED; `duplicated` = tasks a device
 * executed more than once; `phantom` = executions of tasks nobody created; `pending` = accepted
 * tasks still open (the caller decides whether that is legitimate).
 */
export function verdict(accepted: Map<string, string>, states: Map<string, string>, executions: Map<string, number>) {
  let lost = 0;
  let duplicated = 0;
  let pending = 0;
  const byState: Record<string, number> = {};
  for (const id of accepted.keys()) {
    const st = states.get(id);
    byState[st ?? "MISSING"] = (byState[st ?? "MISSING"] ?? 0) + 1;
    const n = executions.get(id) ?? 0;
    if (n > 1) duplicated++;
    if (st === undefined) lost++;
    else if (st === "SUCCEEDED" && n === 0) lost++;
    else if (FINAL.has(st) && st !== "SUCCEEDED") lost++;
    else if (!FINAL.has(st)) pending++;
  }
  const phantom = [...executions.keys()].filter((id) => !accepted.has(id)).length;
  const extraRows = states.size - accepted.size;
  return { lost, duplicated, pending, phantom, extraRows, byState };
}

/** Resident memory of a process (kB → bytes) from /proc, or NaN. */
export async function rssBytes(pid: number): Promise<number> {
  const { readFile } = await import("node:fs/promises");
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
