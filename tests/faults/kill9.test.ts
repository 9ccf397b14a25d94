import path from "node:path";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../helpers/devices.js";
import { type RunningMosquitto, startMosquitto } from "../helpers/mosquitto.js";
import { freshDatabase } from "../helpers/postgres.js";
import { type Replica, startReplica } from "../helpers/replica.js";
import { clients, type Fleet, pumpTasks, scenarioDir, type ScenarioDir, startFleet, taskStates, verdict } from "./lib/fleet.js";
import { reportSummary } from "./lib/summary.js";

/**
 * Scenario 1: two replicas on one PostgreSQL and Mosquitto, a fleet of simulated LEDs, 10,000
 * tasks created through both replicas with many in flight; replica B is killed -9 while tasks are
 * in every state. Afterwards every accepted task ran exactly once, and presence is unchanged: every
 * device online, no disconnect recorded.
 */
const TASKS = Number(process.env.FAULTS_TASKS ?? 10_000);
const DEVICES = Number(process.env.FAULTS_DEVICES ?? 100);

let s: ScenarioDir;
let broker: RunningMosquitto;
let db: Awaited<ReturnType<typeof freshDatabase>>;
const replicas: Replica[] = [];
let fleet: Fleet | undefined;

beforeAll(async () => {
  s = await scenarioDir("kill9");
  broker = await startMosquitto({ certsDir: s.certsDir });
  db = await freshDatabase("tether_faults_kill9");
});
afterAll(async () => {
  await fleet?.close();
  await Promise.all(replicas.map((r) => r.stop()));
  await broker?.stop();
  await db?.drop();
  await s?.cleanup();
});

describe("fault: kill -9 a replica with 10,000 tasks in flight", () => {
  it("loses no task and runs none twice", async () => {
    const env = {
      DATABASE_URL: db.url,
      MQTT_URL: broker.url,
      TETHER_CERTS_DIR: s.certsDir,
      TETHER_TASK_SWEEP_MS: "250",
      TETHER_TASK_ACK_TIMEOUT_MS: "5000",
      LOG_LEVEL: "info",
    };
    const start = (n: string) => startReplica(n, { ...env, TETHER_DATA_DIR: path.join(s.dir, `data-${n}`) });
    replicas.push(await start("a"));
    replicas.push(await start("b"));
    const [a, b] = replicas as [Replica, Replica];
    const ca = clients(a, s.pem);
    const cb = clients(b, s.pem);
    const ids = Array.from({ length: DEVICES }, (_, i) => `k9-led-${i}`);
    fleet = await startFleet(broker.url, s, ids, ca.devices);

    let bAlive = true;
    let killedAt = 0;
    let statesAtKill: Record<string, number> = {};
    const pumping = pumpTasks({
      tasks: () => (bAlive ? [ca.tasks, cb.tasks] : [ca.tasks]),
      devices: ids,
      total: TASKS,
      concurrency: 64,
      runId: "k9",
      executionTimeoutS: 10,
    });
    // Kill B once a good share of the tasks exist and are spread over every state.
    await eventually(
      async () => {
        const st = await taskStates(db.url);
        const counts: Record<string, number> = {};
        for (const v of st.values()) counts[v] = (counts[v] ?? 0) + 1;
        statesAtKill = counts;
        return (
          st.size >= TASKS * 0.4 &&
          (counts.SUCCEEDED ?? 0) > 0 &&
          (counts.QUEUED ?? 0) + (counts.SENT ?? 0) + (counts.DELIVERED ?? 0) + (counts.RUNNING ?? 0) > 0
        );
      },
      240_000,
      "tasks in every state",
    );
    await b.crash();
    bAlive = false;
    killedAt = Date.now();
    const { accepted, retries } = await pumping;
    expect(accepted.size).toBe(TASKS);

    // Everything accepted reaches a final state on the survivor.
    const done = await eventually(
      async () => {
        const st = await taskStates(db.url);
        const v = verdict(accepted, st, fleet!.executions());
        return v.pending === 0 ? { st, v } : undefined;
      },
      300_000,
      "every task final",
    );
    const recoveryMs = Date.now() - killedAt;
    if (process.env.FAULTS_VERBOSE)
      for (const r of replicas)
        console.log(
          r.name,
          r.logs
            .filter((l) => Number(l.level) >= 40)
            .slice(0, 30)
            .map((l) => JSON.stringify(l))
            .join("\n"),
        );
    const v = verdict(accepted, done.st, fleet.executions());
    reportSummary({
      scenario: "1 kill -9 replica",
      injected: `SIGKILL of replica b (1 of 2) with tasks in states ${JSON.stringify(statesAtKill)}`,
      tasks: accepted.size,
      lost: v.lost,
      duplicated: v.duplicated,
      recoveryMs,
      extra: { final: JSON.stringify(v.byState), "create retries": retries, phantom: v.phantom, devices: DEVICES },
    });
    expect(v).toMatchObject({ lost: 0, duplicated: 0, pending: 0, phantom: 0, extraRows: 0 });
    expect(v.byState).toEqual({ SUCCEEDED: TASKS });

    // A replica's crash is not the devices': they stayed connected to the broker, so every one is
    // still online and no disconnect was recorded for any of them.
    const online = (await ca.devices.listDevices({ filter: "online = true", pageSize: 1000 })).devices.filter((d) => d.name.startsWith("devices/k9-led-"));
    expect(online).toHaveLength(DEVICES);
    const sql = postgres(db.url, { max: 1 });
    const [row] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM connectivity_events WHERE NOT connected`;
    await sql.end();
    expect(row!.n).toBe(0);
  });
});
