import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createCounters } from "../../src/core/counters.js";
import { startEmbeddedBroker, type EmbeddedBroker } from "../../src/link/embedded-broker.js";
import { metricTopic, presenceTopic, uplinkTopic } from "../../src/protocol/topics.js";
import { decodeDeviceMessage } from "../../src/link/uplink-decode.js";
import { ensureDevPki, issueDeviceCertificate, issueServiceCertificate, type DevPki } from "../../src/pki/dev-pki.js";

/** The embedded broker's resource limits: packet size at the parser, retained messages. */
describe("embedded broker limits", () => {
  const counters = createCounters();
  const clients: MqttClient[] = [];
  let dir: string;
  let pki: DevPki;
  let broker: EmbeddedBroker;
  let service: { cert: string; key: string };
  let dev: { cert: string; key: string };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "tether-broker-limits-"));
    pki = await ensureDevPki(dir);
    const tether = await issueServiceCertificate(pki.ca);
    service = { cert: tether.certPem, key: tether.keyPem };
    const a = await issueDeviceCertificate(pki.ca, "dev-a");
    dev = { cert: a.certPem, key: a.keyPem };
    broker = await startEmbeddedBroker({
      host: "127.0.0.1",
      port: 0,
      tls: { key: pki.server.keyPem, cert: pki.server.certPem, ca: pki.caPem },
      log: pino({ level: "silent" }),
      counters,
      maxPacketBytes: 4096,
      maxServicePacketBytes: 64 * 1024,
    });
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true).catch(() => undefined)));
  });
  afterAll(async () => {
    await broker?.close();
    await rm(dir, { recursive: true, force: true });
  });

  function connect(opts: IClientOptions): Promise<{ client?: MqttClient; error?: string }> {
    const client = mqtt.connect(`mqtts://127.0.0.1:${broker.port}`, { ca: pki.caPem, reconnectPeriod: 0, connectTimeout: 5_000, protocolVersion: 4, ...opts });
    clients.push(client);
    return new Promise((resolve) => {
      client.once("connect", () => resolve({ client }));
      client.once("error", (err) => resolve({ error: err.message || String(err) }));
      client.once("close", () => resolve({ error: "closed" }));
    });
  }
  async function connectOk(opts: IClientOptions): Promise<MqttClient> {
    const { client, error } = await connect(opts);
    if (!client) throw new Error(`could not connect: ${error}`);
    return client;
  }
  const device = () => connectOk({ clientId: "dev-a", cert: dev.cert, key: dev.key });
  const closed = (c: MqttClient) => new Promise<void>((r) => c.once("close", () => r()));
  /** A service subscriber on all of dev-a's topics that records what reaches it (retained messages included). */
  async function watcher() {
    const svc = await connectOk({ clientId: `watch-${crypto.randomUUID()}`, cert: service.cert, key: service.key });
    const got: { topic: string; size: number; retain: boolean }[] = [];
    svc.on("message", (topic, payload, packet) => got.push({ topic, size: payload.length, retain: packet.retain }));
    await svc.subscribeAsync("tether/v1/devices/dev-a/#", { qos: 1 });
    return {
      /** What arrived before a marker the watcher sends itself now (so everything earlier has been handled). */
      async settled() {
        const marker = metricTopic("dev-a", `settle-${crypto.randomUUID().slice(0, 8)}`);
        await svc.publishAsync(marker, "1", { qos: 1 });
        while (!got.some((m) => m.topic === marker)) await new Promise((r) => setTimeout(r, 10));
        return got.filter((m) => !m.topic.includes("/metrics/settle-"));
      },
    };
  }

  it("closes a device's connection at a PUBLISH larger than the limit, before delivering it, and counts it", async () => {
    const w = await watcher();
    const before = counters.get("tether_mqtt_refused_total", { action: "packet_too_large" });
    const d = await device();
    await d.publishAsync(uplinkTopic("dev-a"), Buffer.alloc(2048, 1), { qos: 1 }); // within the limit
    const gone = closed(d);
    d.publish(uplinkTopic("dev-a"), Buffer.alloc(8192, 2), { qos: 1 });
    await gone;
    expect(counters.get("tether_mqtt_refused_total", { action: "packet_too_large" })).toBe(before + 1);
    expect((await w.settled()).map((m) => m.size)).toEqual([2048]);
  });

  it("lets a service send packets up to its own, larger limit", async () => {
    const w = await watcher();
    const svc = await connectOk({ clientId: "tether-big", cert: service.cert, key: service.key });
    await svc.publishAsync(uplinkTopic("dev-a"), Buffer.alloc(32 * 1024), { qos: 1 });
    expect((await w.settled()).map((m) => m.size)).toEqual([32 * 1024]);
  });

  it("refuses a retained publish from a device except its presence, and keeps nothing", async () => {
    const before = counters.get("tether_mqtt_refused_total", { action: "retain" });
    const d = await device();
    await d.publishAsync(presenceTopic("dev-a"), "online", { qos: 1, retain: true });
    for (const [topic, payload] of [
      [metricTopic("dev-a", "temp"), "21.5"],
      [uplinkTopic("dev-a"), "x"],
      [presenceTopic("dev-a"), "x".repeat(1000)],
    ] as const) {
      const c = await device();
      const gone = closed(c);
      c.publish(topic, payload, { qos: 1, retain: true });
      await gone;
    }
    expect(counters.get("tether_mqtt_refused_total", { action: "retain" })).toBe(before + 3);
    // A later subscriber sees only the retained presence.
    const w = await watcher();
    expect((await w.settled()).filter((m) => m.retain)).toEqual([{ topic: presenceTopic("dev-a"), size: "online".length, retain: true }]);
  });

  it("refuses a device's retained will anywhere but its presence", async () => {
    const result = await connect({
      clientId: "dev-a",
      cert: dev.cert,
      key: dev.key,
      will: { topic: metricTopic("dev-a", "t"), payload: Buffer.from("1"), qos: 1, retain: true },
    });
    expect(result.client).toBeUndefined();
    expect(result.error).toMatch(/Not authorized/i);
  });

  it("refuses a retained publish from a claim certificate", async () => {
    const c = await pki.ca.issue({ commonName: "factory", usage: "client", organizationalUnit: "claims" });
    const claim = await connectOk({ clientId: "claim:SN-9", cert: c.certPem, key: c.keyPem });
    const gone = closed(claim);
    claim.publish("tether/v1/provisioning/factory/SN-9/request", "x", { qos: 1, retain: true });
    await gone;
  });
});

describe("payload limit behind an external broker", () => {
  it("is still enforced by the bridge's decoder, which drops and counts the message", () => {
    // Mosquitto and RabbitMQ deliver what their own limits let through; the embedded broker never would.
    expect(decodeDeviceMessage(uplinkTopic("dev-a"), Buffer.alloc(2048), 1024)).toEqual({ drop: "oversized" });
  });
});
