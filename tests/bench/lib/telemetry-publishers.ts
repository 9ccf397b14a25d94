/**
 * The publishing side of the telemetry benchmark: many real mqtt.js clients over mTLS, run in a
 * worker thread (so the publishers do not share Tether's event loop; on a real deployment they
 * are other machines). Two kinds of group:
 *
 * - `device`: device certificates issued by the stack's CA (CN = client id = device id, OU
 *   `devices`), publishing binary `Uplink{telemetry}` envelopes on their own `…/{id}/up` topic —
 *   exactly what the device SDK sends (`TetherDevice.sendTelemetry`: random UUID message id, time,
 *   `receipt_requested`, one TelemetryBatch), QoS 1. Tether therefore sends a receipt for each
 *   message; the publishers do not wait for it (they do not subscribe to their downlink).
 *   BENCH_RECEIPTS=0 leaves `receipt_requested` unset, to see what receipts cost.
 * - `service`: the raw-MQTT baseline. Same payloads, same QoS, same number of clients, but with
 *   a service certificate (CN `tether`, which the embedded broker lets publish anywhere) on
 *   `{rawPrefix}/{id}/up`, a topic Tether's bridge does not consume.
 *
 * Each client keeps `window` QoS 1 publishes in flight. Optional end-to-end flow control: the main
 * thread reports how many samples have arrived at the far end (stored by Tether, or received by
 * the baseline subscriber) and no new publish starts while more than `backlog` samples are on
 * their way, so a phase measures the sustained rate without building an unbounded backlog.
 */
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import { getHeapStatistics } from "node:v8";
import { create, toBinary } from "@bufbuild/protobuf";
import mqtt, { type MqttClient } from "mqtt";
import { UplinkSchema } from "../../../gen/tether/device/v1/uplink_pb.js";
import { uplinkTopic } from "../../../src/protocol/topics.js";
import { ensureDevPki, issueDeviceCertificate, issueServiceCertificate } from "../../../src/pki/dev-pki.js";
import { startWorkerRpc } from "./worker-rpc.js";

/** Wall-clock milliseconds with sub-ms precision, comparable across threads. */
export const epochMs = (): number => performance.timeOrigin + performance.now();

export interface ConnectRequest {
  group: string;
  /** `mqtts://127.0.0.1:{port}` of the embedded broker. */
  url: string;
  /** Tether's PKI folder; certificates are issued by its CA. */
  certsDir: string;
  ids: string[];
  identity: "device" | "service";
  /** Topic prefix of `service` groups: they publish to `{rawPrefix}/{id}/up`. */
  rawPrefix?: string;
  connectConcurrency: number;
  /** Sample times are `timeBaseMs + n` ms, n counting up per client and metric: never a duplicate. */
  timeBaseMs: number;
}

export interface RunRequest {
  group: string;
  seconds: number;
  /** Samples per Uplink envelope. */
  samplesPerMessage: number;
  metric: string;
  /** QoS 1 publishes in flight per client. */
  window: number;
  /** Most samples between "published" and "arrived at the far end"; 0 = open loop. */
  backlog: number;
}

export interface RunResult {
  messages: number;
  samples: number;
  payloadBytes: { min: number; max: number };
  /** epochMs of the first publish call and of the last PUBACK. */
  firstPublishAt: number;
  lastPubackAt: number;
  failed: number;
  firstError?: string;
  /** Time lanes spent waiting for end-to-end credit, summed over lanes, ms. */
  creditWaitMs: number;
}

export interface PublisherStats {
  groups: Record<string, number>;
  heapUsed: number;
  heapTotal: number;
}

export interface PublisherHost {
  connect(req: ConnectRequest): Promise<{ connected: number; ms: number }>;
  run(req: RunRequest): Promise<RunResult>;
  /** Samples that have arrived at the far end since the current run started. */
  progress(arrived: number): void;
  close(group: string): Promise<void>;
  stats(): Promise<PublisherStats>;
  stop(): Promise<void>;
}

interface Member {
  id: string;
  client: MqttClient;
  topic: string;
  /** Next sample offset per metric. */
  seq: Map<string, number>;
}

interface Group {
  members: Member[];
  timeBaseMs: number;
}

/** The value a device sends as its n-th sample: deterministic, so the COPY baseline can write the same rows. */
export const sampleValue = (n: number): number => (n % 1000) / 10;

export function createPublisherHost(): PublisherHost {
  const groups = new Map<string, Group>();
  let arrived = 0;
  let creditWaiters: Array<() => void> = [];

  async function connectOne(req: ConnectRequest, id: string, ca: string, cert: string, key: string): Promise<Member> {
    const client = await mqtt.connectAsync(req.url, {
      clientId: id,
      ca,
      cert,
      key,
      protocolVersion: 4,
      clean: true,
      reconnectPeriod: 0,
      connectTimeout: 30_000,
    });
    client.on("error", () => {}); // surfaced through failed publishes
    const topic = req.identity === "device" ? uplinkTopic(id) : `${req.rawPrefix ?? "tether-bench/v1"}/${id}/up`;
    return { id, client, topic, seq: new Map() };
  }

  return {
    async connect(req) {
      const t0 = performance.now();
      const pki = await ensureDevPki(req.certsDir);
      const service = req.identity === "service" ? await issueServiceCertificate(pki.ca, "tether") : undefined;
      const members: Member[] = [];
      for (let i = 0; i < req.ids.length; i += req.connectConcurrency) {
        const batch = await Promise.all(
          req.ids.slice(i, i + req.connectConcurrency).map(async (id) => {
            const cert = service ?? (await issueDeviceCertificate(pki.ca, id));
            return connectOne(req, id, pki.caPem, cert.certPem, cert.keyPem);
          }),
        );
        members.push(...batch);
      }
      groups.set(req.group, { members, timeBaseMs: req.timeBaseMs });
      return { connected: members.length, ms: performance.now() - t0 };
    },

    async run(req) {
      const group = groups.get(req.group);
      if (!group) throw new Error(`no publisher group ${req.group}`);
      arrived = 0;
      let issued = 0;
      let messages = 0;
      let failed = 0;
      let firstError: string | undefined;
      let firstPublishAt = 0;
      let lastPubackAt = 0;
      let creditWaitMs = 0;
      let minBytes = Infinity;
      let maxBytes = 0;
      const end = performance.now() + req.seconds * 1000;

      const payloadFor = (m: Member): Buffer => {
        const n0 = m.seq.get(req.metric) ?? 0;
        m.seq.set(req.metric, n0 + req.samplesPerMessage);
        const samples = [];
        for (let k = 0; k < req.samplesPerMessage; k++) {
          const n = n0 + k;
          const ms = group.timeBaseMs + n;
          samples.push({ metric: req.metric, value: sampleValue(n), time: { seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1_000_000 } });
        }
        const now = Date.now();
        const up = create(UplinkSchema, {
          messageId: randomUUID(),
          time: { seconds: BigInt(Math.floor(now / 1000)), nanos: (now % 1000) * 1_000_000 },
          receiptRequested: process.env.BENCH_RECEIPTS !== "0",
          body: { case: "telemetry", value: { samples } },
        });
        return Buffer.from(toBinary(UplinkSchema, up));
      };

      const lane = async (m: Member) => {
        while (performance.now() < end) {
          if (req.backlog > 0 && issued - arrived >= req.backlog) {
            const w0 = performance.now();
            await new Promise<void>((r) => {
              creditWaiters.push(r);
              setTimeout(r, 50); // re-check the clock even if no progress report arrives
            });
            creditWaitMs += performance.now() - w0;
            continue;
          }
          const payload = payloadFor(m);
          minBytes = Math.min(minBytes, payload.length);
          maxBytes = Math.max(maxBytes, payload.length);
          issued += req.samplesPerMessage;
          if (firstPublishAt === 0) firstPublishAt = epochMs();
          try {
            await m.client.publishAsync(m.topic, payload, { qos: 1 });
            messages++;
            lastPubackAt = epochMs();
          } catch (err) {
            failed++;
            issued -= req.samplesPerMessage;
            firstError ??= err instanceof Error ? err.message : String(err);
            if (!m.client.connected) return;
          }
        }
      };
      await Promise.all(group.members.flatMap((m) => Array.from({ length: req.window }, () => lane(m))));
      for (const w of creditWaiters.splice(0)) w();
      return {
        messages,
        samples: messages * req.samplesPerMessage,
        payloadBytes: { min: Number.isFinite(minBytes) ? minBytes : 0, max: maxBytes },
        firstPublishAt,
        lastPubackAt,
        failed,
        firstError,
        creditWaitMs,
      };
    },

    progress(n) {
      arrived = n;
      const waiters = creditWaiters;
      creditWaiters = [];
      for (const w of waiters) w();
    },

    async close(name) {
      const group = groups.get(name);
      groups.delete(name);
      if (group) await Promise.allSettled(group.members.map((m) => m.client.endAsync(true)));
    },

    async stats() {
      const heap = getHeapStatistics();
      return { groups: Object.fromEntries([...groups].map(([k, g]) => [k, g.members.length])), heapUsed: heap.used_heap_size, heapTotal: heap.total_heap_size };
    },

    async stop() {
      await Promise.allSettled([...groups.keys()].map((g) => this.close(g)));
    },
  };
}

export interface PublisherSide extends PublisherHost {
  /** Event-loop utilisation of the publisher thread (pass a previous reading for a delta). */
  elu(from?: import("node:perf_hooks").EventLoopUtilization): import("node:perf_hooks").EventLoopUtilization;
}

/** Starts the publisher host in a worker thread and talks to it over postMessage. */
export function startPublisherSide(): PublisherSide {
  const rpc = startWorkerRpc<PublisherHost>(new URL("./telemetry-publisher-worker.ts", import.meta.url), "publisher");
  const { worker, call } = rpc;
  let stopped = false;
  return {
    connect: (req) => call("connect", req),
    run: (req) => call("run", req),
    progress: (n) => {
      if (!rpc.failed() && !stopped) worker.postMessage({ id: 0, method: "progress", arg: n });
    },
    close: (group) => call("close", group),
    stats: () => call("stats"),
    elu: (from) => worker.performance.eventLoopUtilization(from),
    async stop() {
      if (stopped) return;
      try {
        await call("stop");
      } finally {
        stopped = true;
        await worker.terminate();
      }
    },
  };
}
