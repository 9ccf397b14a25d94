import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { TelemetryService } from "../../gen/tether/v1/telemetry_service_pb.js";
import { metricTopic, uplinkTopic } from "../../src/protocol/topics.js";
import { captureLogger } from "../helpers/auth.js";
import { deviceCredentials, eventually, rawDevice } from "../helpers/devices.js";
import { metricValue } from "../helpers/replica.js";
import { connectClient, startTestStack, type TestStack } from "../helpers/stack.js";

/**
 * What one device can cost the embedded stack: an oversized PUBLISH is cut at the parser (the
 * server never holds the packet), and a device inventing metric names is capped.
 */
const MAX_METRICS = 3;
const PACKET = 10 * 1024 * 1024;
const FIXTURE = fileURLToPath(new URL("./fixtures/oversized-publish.mjs", import.meta.url));
const logs = captureLogger();
let s: TestStack;
beforeAll(async () => {
  s = await startTestStack({ TETHER_TELEMETRY_MAX_METRICS_PER_DEVICE: String(MAX_METRICS) }, { log: logs.log });
  await connectClient(s, DeviceService, "grpc").createDevice({ deviceId: "metric-sprawl", device: { kind: { case: "led", value: {} } } });
}, 60_000);
afterAll(async () => {
  await s?.cleanup();
});

const scrape = async () => (await fetch(`${s.opsUrl}/metrics`)).text();

/** Runs the attacker in its own process, so only the server's memory is in this one. */
function oversizedPublish(opts: object): Promise<{ result: string; sent: number }> {
  const child = spawn(process.execPath, [FIXTURE], { env: { ...process.env, OVERSIZED_PUBLISH: JSON.stringify(opts) }, stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout.on("data", (c: Buffer) => (out += c.toString()));
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code) =>
      code === 0 ? resolve(JSON.parse(out) as { result: string; sent: number }) : reject(new Error(`attacker exited ${code}: ${out}`)),
    );
  });
}

describe("an oversized MQTT publish", () => {
  it("closes that connection before the packet is buffered: the server's memory stays flat", async () => {
    const creds = await deviceCredentials(s, "big-sender");
    const sample = () => {
      const m = process.memoryUsage();
      return { rss: m.rss, heapUsed: m.heapUsed, arrayBuffers: m.arrayBuffers };
    };
    const base = sample();
    const peak = { ...base };
    // Buffers (what mqtt-packet would accumulate) live in arrayBuffers; sampled throughout the attack.
    const sampler = setInterval(() => {
      const m = sample();
      for (const k of Object.keys(peak) as (keyof typeof peak)[]) peak[k] = Math.max(peak[k], m[k]);
    }, 2);
    let outcome: Awaited<ReturnType<typeof oversizedPublish>>;
    try {
      outcome = await oversizedPublish({
        url: creds.url,
        clientId: "big-sender",
        cert: creds.cert,
        key: creds.key,
        ca: creds.ca,
        topic: uplinkTopic("big-sender"),
        bytes: PACKET,
      });
    } finally {
      clearInterval(sampler);
    }
    const growth = { rss: peak.rss - base.rss, heapUsed: peak.heapUsed - base.heapUsed, arrayBuffers: peak.arrayBuffers - base.arrayBuffers };
    console.log(`10 MiB publish: attacker wrote ${outcome.sent} bytes before the close; server peak growth ${JSON.stringify(growth)}`);
    expect(outcome.result).toBe("closed");
    // Well below the packet: the parser refused it at its fixed header.
    expect(growth.arrayBuffers).toBeLessThan(PACKET / 5);
    expect(metricValue(await scrape(), "tether_mqtt_refused_total", { action: "packet_too_large" })).toBe(1);
    // The broker is still up for everyone else (a connect, a subscription and a QoS 1 publish).
    const other = await rawDevice(s, "bystander");
    await other.publishRaw(uplinkTopic("bystander"), "x");
    await other.close();
  });
});

describe("distinct metrics per device", () => {
  it("refuses samples of metric names beyond the cap, counts them, and logs the device once", async () => {
    const dev = await rawDevice(s, "metric-sprawl");
    try {
      const before = metricValue(await scrape(), "tether_telemetry_samples_rejected_total", { reason: "too_many_metrics" }) || 0;
      // m1..m3 fill the cap; m4 and m5 are refused, twice each.
      for (let round = 0; round < 2; round++) {
        for (const m of ["m1", "m2", "m3", "m4", "m5"]) await dev.publishRaw(metricTopic("metric-sprawl", m), String(round));
      }
      await eventually(
        async () => (metricValue(await scrape(), "tether_telemetry_samples_rejected_total", { reason: "too_many_metrics" }) || 0) - before === 4,
        10_000,
        "4 refused samples",
      );
      const telemetry = connectClient(s, TelemetryService, "grpc");
      const latest = await eventually(
        async () => {
          const r = await telemetry.getLatestTelemetry({ parent: "devices/metric-sprawl" });
          return r.samples.length === MAX_METRICS && r.samples.every((x) => x.value === 1) ? r : undefined;
        },
        10_000,
        "the capped metrics stored",
      );
      expect(latest.samples.map((x) => x.metric).sort()).toEqual(["m1", "m2", "m3"]);
      const warnings = logs.lines().filter((l) => String(l.msg).includes("distinct-metric limit"));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatchObject({ deviceId: "metric-sprawl", maxMetricsPerDevice: MAX_METRICS });
    } finally {
      await dev.close();
    }
  });
});
