import path from "node:path";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import postgres from "postgres";
import { expect } from "vitest";
import { eventually } from "../../helpers/devices.js";
import { metricValue, type Replica } from "../../helpers/replica.js";
import { alive, clients, type Fleet, pumpTasks, type ScenarioDir, startFleet, taskStates, verdict } from "./fleet.js";
import { reportSummary } from "./summary.js";

/**
 * The replica settings every outage scenario uses: its files in the scenario's folder, fast health
 * probes and sweeps, a 5 s ack timeout (so tasks caught by the fault are resent soon after).
 */
export function outageReplicaEnv(s: ScenarioDir): Record<string, string> {
  return {
    TETHER_CERTS_DIR: s.certsDir,
    TETHER_DATA_DIR: path.join(s.dir, "data"),
    TETHER_HEALTH_PROBE_MS: "500",
    TETHER_TASK_SWEEP_MS: "250",
    TETHER_TASK_ACK_TIMEOUT_MS: "5000",
  };
}

export interface OutageRun {
  scenario: string;
  /** Device id prefix: a lowercase letter first. */
  prefix: string;
  injected: string;
  s: ScenarioDir;
  replica: Replica;
  /** The database the replica uses, reached directly (not through a proxy) by the test. */
  databaseUrl: string;
  /** Where the simulated devices connect. */
  deviceUrl: string;
  provision?: (deviceId: string) => Promise<void>;
  devices: number;
  tasks: number;
  /** Performs the fault and resolves when it is healed; returns a description of what was done. */
  inject(): Promise<void>;
  onFleet?: (fleet: Fleet) => void;
  /** More figures for the summary line, filled in by `inject`. */
  extra?: Record<string, string | number>;
}

/**
 * Runs tasks and telemetry through one replica, injects a fault once a third of the tasks are
 * accepted, heals it, then checks: every accepted task final and run exactly once, every sample
 * a device sent stored (the device SDK keeps each batch until Tether's receipt and resends it, so
 * a sample a broker or Tether lost on the way comes again). Prints the summary line.
 */
export async function runOutage(o: OutageRun): Promise<void> {
  const c = clients(o.replica, o.s.pem);
  const ids = Array.from({ length: o.devices }, (_, i) => `${o.prefix}-${i}`);
  if (o.provision) for (const id of ids) await o.provision(id);
  const fleet = await startFleet(o.deviceUrl, o.s, ids, c.devices);
  o.onFleet?.(fleet);
  let sending = true;
  const receiptedKeys = new Set<string>();
  const base = Date.now() - 3_600_000;
  const sentKeys: string[] = [];
  // Telemetry: every device, one sample every 100 ms with its own timestamp; each one must be stored.
  // Keyed by the sim's own device id: `fleet.sims` is in connect order, not in `ids` order (keying
  // by `ids[d]` mislabelled the last sample of some devices, which looked like 1–3 lost samples).
  const senders = fleet.sims.map(({ device }) =>
    (async () => {
      for (let n = 0; sending; n++) {
        const time = timestampFromDate(new Date(base + n * 10));
        const key = `${device.deviceId}/${n}`;
        sentKeys.push(key);
        void device.sendTelemetry([{ metric: "fault_probe", value: n, time }]).then(
          () => void receiptedKeys.add(key),
          () => {},
        );
        await new Promise((r) => setTimeout(r, 100));
      }
    })(),
  );
  let faultStart = 0;
  let healed = 0;
  let faultDone: Promise<void> | undefined;
  const pumping = pumpTasks({
    tasks: () => [c.tasks],
    devices: ids,
    total: o.tasks,
    concurrency: 32,
    runId: ids[0]!,
    executionTimeoutS: 10,
    onAccepted: (n) => {
      if (n === Math.floor(o.tasks / 3) && !faultDone) {
        faultStart = Date.now();
        faultDone = o.inject().then(() => void (healed = Date.now()));
      }
    },
  });
  const acceptedSoFar = 0;
  const progress = process.env.FAULTS_VERBOSE
    ? setInterval(() => {
        void taskStates(o.databaseUrl)
          .then((st) => {
            const counts: Record<string, number> = {};
            for (const v of st.values()) counts[v] = (counts[v] ?? 0) + 1;
            console.log(
              `[progress] ${o.scenario} fault=${faultStart ? (healed ? "healed" : "on") : "off"} samples sent=${sentKeys.length} receipted=${receiptedKeys.size} tasks=${JSON.stringify(counts)} logs=${o.replica.logs.length}`,
            );
            if (healed) void diagnose(o);
          })
          .catch(() => {});
      }, 5000)
    : undefined;
  void acceptedSoFar;
  try {
    const { accepted, retries } = await pumping;
    await faultDone;
    // Keep telemetry flowing for a moment after the heal, then stop sending.
    await new Promise((r) => setTimeout(r, 2000));
    sending = false;
    await Promise.all(senders);
    const readyMs = await eventually(
      async () => ((await fetch(`${o.replica.opsUrl}/readyz`)).status === 200 ? Date.now() - healed : undefined),
      60_000,
      "ready again",
    );
    const sql = postgres(o.databaseUrl, { max: 1, onnotice: () => {} });
    let stored = new Set<string>();
    try {
      const final = await eventually(
        async () => {
          const v = verdict(accepted, await taskStates(o.databaseUrl), fleet.executions());
          const rows = await sql<Array<{ device_id: string; value: number }>>`SELECT device_id, value FROM telemetry WHERE metric = 'fault_probe'`;
          stored = new Set(rows.map((r) => `${r.device_id}/${r.value}`));
          const missing = sentKeys.filter((k) => !stored.has(k)).length;
          return v.pending === 0 && missing === 0 ? v : undefined;
        },
        150_000,
        "every task final and every sample stored",
      ).catch(() => undefined);
      const recoveryMs = Date.now() - healed;
      const v = final ?? verdict(accepted, await taskStates(o.databaseUrl), fleet.executions());
      const metrics = await fetch(`${o.replica.opsUrl}/metrics`)
        .then((r) => r.text())
        .catch(() => "");
      // Every drop and refusal reason with a count, so a missing sample can be matched to one.
      const byReason = (name: string) =>
        [...metrics.matchAll(new RegExp(`^${name}\\{reason="([^"]+)"\\} (\\S+)$`, "gm"))].map((m) => `${m[1]}=${m[2]}`).join(" ") || "none";
      const missingSamples = sentKeys.filter((k) => !stored.has(k));
      const samplesLost = missingSamples.length;
      const backlog = fleet.sims.map((x) => x.device.telemetryBacklog());
      const diag: Record<string, string | number> = {};
      if (samplesLost > 0) {
        // What Tether believes it stored against what the database shows, and open transactions.
        const [{ rows }] = await sql<[{ rows: number }]>`SELECT count(*)::int AS rows FROM telemetry`;
        const idle = await sql<
          Array<{ n: number }>
        >`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'`;
        diag["stored per Tether / rows"] = `${metricValue(metrics, "tether_telemetry_samples_stored_total")}/${rows}`;
        diag["idle in transaction"] = idle[0]!.n;
      }
      reportSummary({
        scenario: o.scenario,
        injected: `${o.injected} (${((healed - faultStart) / 1000).toFixed(1)} s)`,
        tasks: accepted.size,
        samples: sentKeys.length,
        lost: v.lost + samplesLost,
        duplicated: v.duplicated,
        recoveryMs,
        extra: {
          ...o.extra,
          ...diag,
          ...(samplesLost > 0
            ? { "e.g. missing": missingSamples.slice(0, 5).join(" "), "missing yet receipted": missingSamples.filter((k) => receiptedKeys.has(k)).length }
            : {}),
          "uplink dropped": byReason("tether_uplink_dropped_total"),
          "samples refused": byReason("tether_telemetry_samples_rejected_total"),
          "batches resent by devices (no receipt yet)": backlog.reduce((n, b) => n + b.resent, 0),
          "unreceipted at the end": backlog.reduce((n, b) => n + b.pending, 0),
          "tasks lost": v.lost,
          "samples lost": samplesLost,
          "ready after heal": `${(readyMs / 1000).toFixed(1)} s`,
          final: JSON.stringify(v.byState),
          "create retries": retries,
        },
      });
      expect(v).toMatchObject({ lost: 0, duplicated: 0, pending: 0, phantom: 0 });
      expect(samplesLost).toBe(0);
      expect(receiptedKeys.size).toBeGreaterThan(0);
    } finally {
      await sql.end();
    }
  } finally {
    clearInterval(progress);
    sending = false;
    await fleet.close();
  }
}

async function diagnose(o: OutageRun) {
  const sql = postgres(o.databaseUrl, { max: 1, onnotice: () => {} });
  try {
    const rows =
      await sql`SELECT state, wait_event_type, wait_event, left(query, 120) AS q, now() - state_change AS age FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`;
    console.log("[diag] pg", JSON.stringify(rows));
    const ready = await fetch(`${o.replica.opsUrl}/readyz`)
      .then((r) => r.text())
      .catch((e) => String(e));
    console.log("[diag] readyz", ready, "alive", alive(o.replica.pid), o.replica.stderr().slice(-3000));
  } finally {
    await sql.end();
  }
}
