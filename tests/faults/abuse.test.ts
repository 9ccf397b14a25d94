import { randomBytes } from "node:crypto";
import path from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import mqtt, { type MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UplinkSchema } from "../../gen/tether/device/v1/uplink_pb.js";
import { Task_State as State } from "../../gen/tether/v1/task_pb.js";
import { CreateTaskRequest_WaitFor as WaitFor } from "../../gen/tether/v1/task_service_pb.js";
import { metricTopic, presenceTopic, uplinkTopic } from "../../src/protocol/topics.js";
import { issueDeviceCertificate } from "../../src/pki/dev-pki.js";
import { eventually } from "../helpers/devices.js";
import { type RunningMosquitto, startMosquitto } from "../helpers/mosquitto.js";
import { freshDatabase } from "../helpers/postgres.js";
import { metricValue, type Replica, startReplica } from "../helpers/replica.js";
import { alive, clients, type Fleet, rssBytes, scenarioDir, type ScenarioDir, startFleet } from "./lib/fleet.js";
import { reportSummary } from "./lib/summary.js";

/**
 * Scenario 4: abuse. Fuzzed protobuf and random bytes on every uplink topic, oversized messages,
 * a device flooding its uplink, 1,000 concurrent API calls with invalid fields. The process stays
 * up, its memory stays bounded, valid traffic keeps flowing.
 */
const FUZZ_CASES = Number(process.env.FAULTS_FUZZ_CASES ?? 4000);
const RSS_BOUND = 1024 * 1024 * 1024; // generous: a healthy replica sits around 150-250 MiB

let s: ScenarioDir;
let broker: RunningMosquitto;
let db: Awaited<ReturnType<typeof freshDatabase>>;
let r: Replica;
let fleet: Fleet | undefined;
const raw: MqttClient[] = [];

beforeAll(async () => {
  s = await scenarioDir("abuse");
  broker = await startMosquitto({ certsDir: s.certsDir });
  db = await freshDatabase("tether_faults_abuse");
  r = await startReplica("abuse", {
    DATABASE_URL: db.url,
    MQTT_URL: broker.url,
    TETHER_CERTS_DIR: s.certsDir,
    TETHER_DATA_DIR: path.join(s.dir, "data"),
    TETHER_UPLINK_RATE_PER_S: "50",
    TETHER_UPLINK_BURST: "200",
    LOG_LEVEL: "info",
  });
});
afterAll(async () => {
  await Promise.all(raw.map((c) => c.endAsync(true).catch(() => {})));
  await fleet?.close();
  await r?.stop();
  await broker?.stop();
  await db?.drop();
  await s?.cleanup();
});

async function rawDevice(id: string): Promise<MqttClient> {
  const cert = await issueDeviceCertificate(s.pki.ca, id);
  const c = await mqtt.connectAsync(broker.url, {
    clientId: id,
    cert: cert.certPem,
    key: cert.keyPem,
    ca: s.pki.caPem,
    protocolVersion: 4,
    reconnectPeriod: 0,
  });
  raw.push(c);
  return c;
}
const scrape = async () => (await fetch(`${r.opsUrl}/metrics`)).text();
const dropped = async (reason: string) => metricValue(await scrape(), "tether_uplink_dropped_total", { reason }) || 0;

/** A valid Uplink, then mutated: bit flips, truncation, splices, random bytes. */
function fuzzCase(i: number): Buffer {
  const valid = Buffer.from(
    toBinary(
      UplinkSchema,
      create(UplinkSchema, {
        messageId: crypto.randomUUID(),
        body:
          i % 3 === 0
            ? { case: "telemetry", value: { samples: [{ metric: "temp", value: i, time: timestampFromDate(new Date()) }] } }
            : { case: "ack", value: { taskId: crypto.randomUUID() } },
      }),
    ),
  );
  switch (i % 5) {
    case 0:
      return randomBytes(1 + (i % 300));
    case 1: {
      const b = Buffer.from(valid);
      for (let k = 0; k < 1 + (i % 4); k++) b[(i * 7 + k * 13) % b.length]! ^= 1 << (k % 8);
      return b;
    }
    case 2:
      return valid.subarray(0, i % valid.length);
    case 3:
      return Buffer.concat([valid.subarray(0, (i * 3) % valid.length), randomBytes(8), valid.subarray((i * 5) % valid.length)]);
    default:
      // Varint bombs and huge declared lengths.
      return Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, ...randomBytes(i % 16)]);
  }
}

describe("abuse: the process stays up, memory stays bounded, valid traffic keeps flowing", () => {
  it("survives fuzz, oversized uplink, a flooding device and 1,000 invalid API calls", async () => {
    const c = clients(r, s.pem);
    fleet = await startFleet(broker.url, s, ["abuse-good-0", "abuse-good-1"], c.devices);
    const fuzzers = await Promise.all(
      Array.from({ length: 10 }, (_, i) => `abuse-fuzz-${i}`).map(async (id) => {
        await c.devices.createDevice({ deviceId: id, device: { kind: { case: "led", value: {} } } });
        return { id, client: await rawDevice(id) };
      }),
    );
    let peakRss = 0;
    const sampler = setInterval(() => void rssBytes(r.pid).then((b) => (peakRss = Math.max(peakRss, b || 0))), 200);
    const valid = async () => {
      const t = await c.tasks.createTask({
        parent: "devices/abuse-good-0",
        task: { command: { kind: { case: "led", value: { action: { case: "setPower", value: true } } } } },
        waitFor: WaitFor.COMPLETED,
        waitTimeout: { seconds: 60n },
      });
      expect(t.state).toBe(State.SUCCEEDED);
    };
    const t0 = Date.now();
    try {
      // 1. Fuzz every uplink topic: binary up, JSON up, presence, metrics. Paced per device so the
      // rate limit does not hide the decoder from the fuzzer.
      const topics = (id: string) => [uplinkTopic(id), `${uplinkTopic(id)}/json`, presenceTopic(id), metricTopic(id, "temp")];
      const perDevice = Math.ceil(FUZZ_CASES / fuzzers.length);
      await Promise.all(
        fuzzers.map(async (f, d) => {
          for (let i = 0; i < perDevice; i++) {
            const n = d * perDevice + i;
            const topic = topics(f.id)[n % 4]!;
            await f.client.publishAsync(topic, n % 4 === 0 ? fuzzCase(n) : n % 2 === 0 ? randomBytes(n % 200) : fuzzCase(n).toString("latin1"), { qos: 1 });
            if (i % 40 === 39) await new Promise((res) => setTimeout(res, 1000)); // 40/s < 50/s limit
          }
        }),
      );
      await valid();
      expect(alive(r.pid)).toBe(true);
      const malformed = await dropped("malformed");
      expect(malformed).toBeGreaterThan(FUZZ_CASES / 10);

      // 2. Oversized uplink (above TETHER_MQTT_MAX_PAYLOAD_BYTES, below the broker's packet limit).
      const big = fuzzers[0]!.client;
      for (let i = 0; i < 20; i++) await big.publishAsync(uplinkTopic(fuzzers[0]!.id), randomBytes(300 * 1024), { qos: 1 });
      await eventually(async () => (await dropped("oversized")) >= 20, 20_000, "20 oversized drops");

      // 3. One device floods its uplink; the limiter drops the excess, others are unaffected.
      const flooder = fuzzers[1]!;
      const FLOOD = 5000;
      await Promise.all(Array.from({ length: FLOOD }, (_, i) => flooder.client.publishAsync(metricTopic(flooder.id, "flood"), String(i), { qos: 0 })));
      const limited = await eventually(
        async () => {
          const n = await dropped("rate_limited");
          return n > FLOOD / 2 ? n : undefined;
        },
        30_000,
        "rate_limited drops",
      );
      await valid();

      // 4. 1,000 concurrent API calls with invalid fields.
      const bad = await Promise.allSettled(
        Array.from({ length: 1000 }, (_, i) => {
          switch (i % 5) {
            case 0:
              return c.tasks.createTask({ parent: `devices/${"x".repeat(300)}`, task: {} });
            case 1:
              return c.tasks.createTask({
                parent: "devices/abuse-good-1",
                task: { command: { kind: { case: "led", value: { action: { case: "setBrightness", value: 5000 } } } }, maxAttempts: 99 },
                requestId: "r".repeat(500),
              });
            case 2:
              return c.devices.createDevice({ deviceId: `BAD ID ${i} !!`, device: {} });
            case 3:
              return c.tasks.listTasks({ parent: "devices/-", pageSize: -1, pageToken: randomBytes(40).toString("base64") });
            default:
              return c.devices.updateDevice({ device: { name: "devices/abuse-good-1" }, updateMask: { paths: ["no.such.field", "\u0000"] } });
          }
        }),
      );
      const codes: Record<string, number> = {};
      const unexpected = new Set<string>();
      for (const [i, b] of bad.entries()) {
        const code = b.status === "rejected" ? Code[ConnectError.from(b.reason).code] : "ok";
        codes[code!] = (codes[code!] ?? 0) + 1;
        if (!["InvalidArgument", "NotFound", "ResourceExhausted"].includes(code!))
          unexpected.add(`case ${i % 5}: ${code} ${b.status === "rejected" ? ConnectError.from(b.reason).rawMessage : ""}`);
      }
      expect([...unexpected]).toEqual([]);
      await valid();
      expect(alive(r.pid)).toBe(true);
      const rss = await rssBytes(r.pid);
      expect(rss).toBeLessThan(RSS_BOUND);
      reportSummary({
        scenario: "4 abuse (uplink + API)",
        injected: `${FUZZ_CASES} fuzz cases on 4 uplink topics, 20 × 300 KiB, ${FLOOD}-message flood from one device, 1,000 concurrent invalid API calls`,
        tasks: 3, // valid tasks run between the abuse phases, each SUCCEEDED
        lost: 0,
        duplicated: 0,
        extra: {
          "dropped malformed": malformed,
          "dropped oversized": await dropped("oversized"),
          "dropped rate_limited": limited,
          "API answers": JSON.stringify(codes),
          "peak RSS": `${(peakRss / 1048576).toFixed(0)} MiB`,
          "process alive": String(alive(r.pid)),
          duration: `${((Date.now() - t0) / 1000).toFixed(0)} s`,
        },
      });
    } finally {
      clearInterval(sampler);
    }
  });
});
