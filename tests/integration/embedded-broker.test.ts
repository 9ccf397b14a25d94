import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startEmbeddedBroker, type EmbeddedBroker } from "../../src/link/embedded-broker.js";
import {
  ALL_METRICS,
  ALL_UPLINKS,
  downlinkTopic,
  isTopicAllowedForDevice,
  metricTopic,
  parseDeviceTopic,
  presenceTopic,
  uplinkJsonTopic,
  uplinkTopic,
} from "../../src/protocol/topics.js";
import { createCertificateAuthority, type CertificateAuthority } from "../../src/pki/certificate-authority.js";
import { ensureDevPki, issueDeviceCertificate, issueServiceCertificate, type DevPki } from "../../src/pki/dev-pki.js";

describe("topic scheme", () => {
  it("builds and parses every channel", () => {
    expect(downlinkTopic("dev-1")).toBe("tether/v1/devices/dev-1/down");
    expect(uplinkTopic("dev-1")).toBe("tether/v1/devices/dev-1/up");
    expect(uplinkJsonTopic("dev-1")).toBe("tether/v1/devices/dev-1/up/json");
    expect(presenceTopic("dev-1")).toBe("tether/v1/devices/dev-1/presence");
    expect(metricTopic("dev-1", "temperature")).toBe("tether/v1/devices/dev-1/metrics/temperature");
    expect(parseDeviceTopic(downlinkTopic("dev-1"))).toEqual({ deviceId: "dev-1", channel: "down" });
    expect(parseDeviceTopic(uplinkTopic("dev-1"))).toEqual({ deviceId: "dev-1", channel: "up" });
    expect(parseDeviceTopic(uplinkJsonTopic("dev-1"))).toEqual({ deviceId: "dev-1", channel: "up/json" });
    expect(parseDeviceTopic(presenceTopic("dev-1"))).toEqual({ deviceId: "dev-1", channel: "presence" });
    expect(parseDeviceTopic(metricTopic("dev-1", "cpu_load"))).toEqual({ deviceId: "dev-1", channel: "metrics", metric: "cpu_load" });
  });

  it("rejects wildcards, invalid ids and unknown channels", () => {
    for (const topic of [
      ALL_UPLINKS,
      ALL_METRICS,
      "tether/v1/devices/#",
      "tether/v1/devices/dev-1/#",
      "tether/v1/devices/Dev-1/up",
      "tether/v1/devices/1dev/up",
      `tether/v1/devices/${"a".repeat(64)}/up`,
      "tether/v1/devices//up",
      "tether/v1/devices/dev-1",
      "tether/v1/devices/dev-1/up/",
      "tether/v1/devices/dev-1/up/xml",
      "tether/v1/devices/dev-1/metrics",
      "tether/v1/devices/dev-1/metrics/a/b",
      "tether/v2/devices/dev-1/up",
      "/tether/v1/devices/dev-1/up",
    ]) {
      expect(parseDeviceTopic(topic), topic).toBeUndefined();
    }
    expect(() => uplinkTopic("Bad Id")).toThrow();
    expect(() => metricTopic("dev-1", "a/b")).toThrow();
  });

  it("lets a device publish only to its own uplink topics and subscribe only to its own downlink", () => {
    for (const t of [uplinkTopic("a"), uplinkJsonTopic("a"), presenceTopic("a"), metricTopic("a", "t")]) {
      expect(isTopicAllowedForDevice("a", t, "publish")).toBe(true);
      expect(isTopicAllowedForDevice("a", t, "subscribe")).toBe(false);
      expect(isTopicAllowedForDevice("b", t, "publish")).toBe(false);
    }
    expect(isTopicAllowedForDevice("a", downlinkTopic("a"), "subscribe")).toBe(true);
    expect(isTopicAllowedForDevice("a", downlinkTopic("a"), "publish")).toBe(false);
    expect(isTopicAllowedForDevice("a", downlinkTopic("b"), "subscribe")).toBe(false);
    expect(isTopicAllowedForDevice("a", "tether/v1/devices/a/#", "subscribe")).toBe(false);
    expect(isTopicAllowedForDevice("a", "tether/v1/devices/+/down", "subscribe")).toBe(false);
    expect(isTopicAllowedForDevice("a", "$SYS/#", "subscribe")).toBe(false);
  });
});

describe("embedded broker", () => {
  const log = pino({ level: "silent" });
  const clients: MqttClient[] = [];
  let dir: string;
  let pki: DevPki;
  let broker: EmbeddedBroker;
  let service: { cert: string; key: string };
  let devA: { cert: string; key: string };
  let devB: { cert: string; key: string };
  let foreignCa: CertificateAuthority;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "tether-broker-"));
    pki = await ensureDevPki(dir);
    const tether = await issueServiceCertificate(pki.ca);
    service = { cert: tether.certPem, key: tether.keyPem };
    const a = await issueDeviceCertificate(pki.ca, "dev-a");
    devA = { cert: a.certPem, key: a.keyPem };
    const b = await issueDeviceCertificate(pki.ca, "dev-b");
    devB = { cert: b.certPem, key: b.keyPem };
    foreignCa = await createCertificateAuthority("Foreign CA");
    broker = await startBroker();
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true).catch(() => undefined)));
  });

  afterAll(async () => {
    await broker?.close();
    await rm(dir, { recursive: true, force: true });
  });

  function startBroker() {
    return startEmbeddedBroker({
      host: "127.0.0.1",
      port: 0,
      tls: { key: pki.server.keyPem, cert: pki.server.certPem, ca: pki.caPem },
      log,
    });
  }

  /** Connects without retries; resolves with the client or with the reason it could not connect. */
  function connect(port: number, opts: IClientOptions): Promise<{ client?: MqttClient; error?: string }> {
    const client = mqtt.connect(`mqtts://127.0.0.1:${port}`, { ca: pki.caPem, reconnectPeriod: 0, connectTimeout: 5_000, ...opts });
    clients.push(client);
    return new Promise((resolve) => {
      client.once("connect", () => resolve({ client }));
      client.once("error", (err) => resolve({ error: err.message || String(err) }));
      client.once("close", () => resolve({ error: "closed" }));
    });
  }

  async function connectOk(opts: IClientOptions, port = broker.port): Promise<MqttClient> {
    const { client, error } = await connect(port, opts);
    if (!client) throw new Error(`could not connect: ${error}`);
    return client;
  }

  /** Collects messages arriving on `client` for the given topic. */
  function collect(client: MqttClient, topic: string) {
    const got: { payload: string; qos: number; retain: boolean }[] = [];
    client.on("message", (t, payload, packet) => {
      if (t === topic) got.push({ payload: payload.toString(), qos: packet.qos, retain: packet.retain });
    });
    return got;
  }

  const until = async (cond: () => boolean, ms = 3_000) => {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) throw new Error("timed out");
      await new Promise((r) => setTimeout(r, 10));
    }
  };

  it("delivers a device's uplink to a service client", async () => {
    const svc = await connectOk({ clientId: "tether-bridge-1", cert: service.cert, key: service.key });
    await svc.subscribeAsync(ALL_UPLINKS, { qos: 1 });
    const got = collect(svc, uplinkTopic("dev-a"));
    const dev = await connectOk({ clientId: "dev-a", cert: devA.cert, key: devA.key });
    await dev.publishAsync(uplinkTopic("dev-a"), Buffer.from([1, 2, 3]), { qos: 1 });
    await until(() => got.length === 1);
    expect(got[0]!.payload).toBe("\u0001\u0002\u0003");
  });

  it("does not deliver a device's publish to another device's topic and drops the device", async () => {
    const svc = await connectOk({ clientId: "tether-bridge-2", cert: service.cert, key: service.key });
    await svc.subscribeAsync(ALL_UPLINKS, { qos: 1 });
    const got = collect(svc, uplinkTopic("dev-b"));
    const dev = await connectOk({ clientId: "dev-a", cert: devA.cert, key: devA.key });
    const closed = new Promise<void>((r) => dev.once("close", () => r()));
    dev.publish(uplinkTopic("dev-b"), "spoofed", { qos: 0 });
    await closed;
    await new Promise((r) => setTimeout(r, 200));
    expect(got).toEqual([]);
  });

  it("refuses a device's subscription to another device's downlink without dropping it", async () => {
    const dev = await connectOk({ clientId: "dev-a", cert: devA.cert, key: devA.key });
    await expect(dev.subscribeAsync(downlinkTopic("dev-b"), { qos: 1 })).rejects.toMatchObject({ packet: { granted: [128] } });
    await expect(dev.subscribeAsync("tether/v1/devices/+/down", { qos: 1 })).rejects.toMatchObject({ packet: { granted: [128] } });
    const granted = await dev.subscribeAsync(downlinkTopic("dev-a"), { qos: 1 });
    expect(granted).toEqual([{ topic: downlinkTopic("dev-a"), qos: 1 }]);
    expect(dev.connected).toBe(true);
  });

  it("delivers a service's downlink to the device with QoS 1", async () => {
    const dev = await connectOk({ clientId: "dev-b", cert: devB.cert, key: devB.key });
    await dev.subscribeAsync(downlinkTopic("dev-b"), { qos: 1 });
    const got = collect(dev, downlinkTopic("dev-b"));
    const svc = await connectOk({ clientId: "tether-bridge-3", cert: service.cert, key: service.key });
    await svc.publishAsync(downlinkTopic("dev-b"), Buffer.from("cmd"), { qos: 1 });
    await until(() => got.length === 1);
    expect(got[0]).toMatchObject({ payload: "cmd", qos: 1 });
  });

  it("publishes the retained presence will when a device is disconnected", async () => {
    const svc = await connectOk({ clientId: "tether-bridge-4", cert: service.cert, key: service.key });
    await svc.subscribeAsync(presenceTopic("dev-a"), { qos: 1 });
    const got = collect(svc, presenceTopic("dev-a"));
    const will = { topic: presenceTopic("dev-a"), payload: Buffer.from("offline"), qos: 1 as const, retain: true };
    const dev = await connectOk({ clientId: "dev-a", cert: devA.cert, key: devA.key, will });
    await dev.publishAsync(presenceTopic("dev-a"), "online", { qos: 1, retain: true });
    await until(() => got.length === 1);
    broker.disconnectClient("dev-a");
    await until(() => got.length === 2);
    expect(got.map((m) => m.payload)).toEqual(["online", "offline"]);
  });

  // TLS-level refusals surface as an alert or a closed socket; MQTT-level ones as CONNACK 5.
  const TLS_REFUSED = /./;
  const NOT_AUTHORIZED = /Not authorized/;
  it.each<[string, RegExp, () => IClientOptions | Promise<IClientOptions>]>([
    ["no client certificate", TLS_REFUSED, () => ({ clientId: "dev-a" })],
    [
      "a certificate from a foreign CA",
      TLS_REFUSED,
      async () => {
        const c = await foreignCa.issue({ commonName: "dev-a", usage: "client", organizationalUnit: "devices" });
        return { clientId: "dev-a", cert: c.certPem, key: c.keyPem };
      },
    ],
    ["a client id that differs from the certificate CN", NOT_AUTHORIZED, () => ({ clientId: "dev-b", cert: devA.cert, key: devA.key })],
    ["no client id", NOT_AUTHORIZED, () => ({ clientId: "", cert: devA.cert, key: devA.key })],
    [
      "a will on another device's topic",
      NOT_AUTHORIZED,
      () => ({
        clientId: "dev-a",
        cert: devA.cert,
        key: devA.key,
        will: { topic: presenceTopic("dev-b"), payload: Buffer.from("offline"), qos: 1, retain: true },
      }),
    ],
    [
      "a certificate that is neither a device nor a service",
      NOT_AUTHORIZED,
      async () => {
        const c = await pki.ca.issue({ commonName: "alice", usage: "client", organizationalUnit: "users" });
        return { clientId: "alice", cert: c.certPem, key: c.keyPem };
      },
    ],
    [
      "a device certificate whose CN is not a valid device id",
      NOT_AUTHORIZED,
      async () => {
        const c = await pki.ca.issue({ commonName: "Dev_A", usage: "client", organizationalUnit: "devices" });
        return { clientId: "Dev_A", cert: c.certPem, key: c.keyPem };
      },
    ],
  ])("refuses a client with %s", async (_what, expected, makeOpts) => {
    const result = await connect(broker.port, await makeOpts());
    expect(result.client).toBeUndefined();
    expect(result.error).toMatch(expected);
  });

  it("accepts the admin certificate as a service with any client id", async () => {
    const broker2 = await startEmbeddedBroker({
      host: "127.0.0.1",
      port: 0,
      log,
      tls: { key: pki.server.keyPem, cert: pki.server.certPem, ca: pki.caPem },
      serviceCommonNames: ["admin"],
    });
    try {
      const admin = await connectOk({ clientId: "anything", cert: pki.admin.certPem, key: pki.admin.keyPem }, broker2.port);
      await admin.subscribeAsync("tether/v1/devices/#", { qos: 0 });
      const refused = await connect(broker2.port, { clientId: "x", cert: service.cert, key: service.key });
      expect(refused.client).toBeUndefined();
    } finally {
      await broker2.close();
    }
  });

  it("refuses a revoked certificate at connect and cuts its live session when revoked", async () => {
    const revoked = new Set<string>();
    const b = await startEmbeddedBroker({
      host: "127.0.0.1",
      port: 0,
      log,
      tls: { key: pki.server.keyPem, cert: pki.server.certPem, ca: pki.caPem },
      isRevoked: (serial) => revoked.has(serial),
    });
    try {
      const a = await issueDeviceCertificate(pki.ca, "dev-a");
      const live = await connectOk({ clientId: "dev-a", cert: a.certPem, key: a.keyPem }, b.port);
      const other = await connectOk({ clientId: "dev-b", cert: devB.cert, key: devB.key }, b.port);
      let closedAt = 0;
      live.on("close", () => (closedAt ||= Date.now()));
      revoked.add(a.serialNumber);
      const started = Date.now();
      expect(b.disconnectRevoked((serial) => revoked.has(serial))).toBe(1);
      await until(() => closedAt > 0, 5_000);
      expect(closedAt - started).toBeLessThan(5_000);
      expect(other.connected).toBe(true); // only the revoked certificate's session
      const again = await connect(b.port, { clientId: "dev-a", cert: a.certPem, key: a.keyPem });
      expect(again.client).toBeUndefined();
      expect(again.error).toMatch(NOT_AUTHORIZED);
    } finally {
      await b.close();
    }
  });

  it("lets a provisioning claim certificate use its own provisioning topics and nothing else", async () => {
    // A claim never gets a device's client id (that would cut the device's session) or a service's powers.
    for (const [cn, clientId] of [
      ["factory-batch", "factory-batch"],
      ["tether", "tether-x"],
      ["dev-a", "dev-a"],
      ["factory-batch", "claim:bad/id"],
    ]) {
      const c = await pki.ca.issue({ commonName: cn!, usage: "client", organizationalUnit: "claims" });
      const result = await connect(broker.port, { clientId, cert: c.certPem, key: c.keyPem });
      expect(result.client, `${cn} as ${clientId}`).toBeUndefined();
      expect(result.error).toMatch(NOT_AUTHORIZED);
    }
    const c = await pki.ca.issue({ commonName: "tether", usage: "client", organizationalUnit: "claims" });
    const claim = await connectOk({ clientId: "claim:SN-1", cert: c.certPem, key: c.keyPem });
    expect(await claim.subscribeAsync("tether/v1/provisioning/tether/SN-1/response", { qos: 1 })).toEqual([
      { topic: "tether/v1/provisioning/tether/SN-1/response", qos: 1 },
    ]);
    for (const topic of [
      downlinkTopic("dev-a"),
      "tether/v1/provisioning/tether/SN-2/response",
      "tether/v1/provisioning/other/SN-1/response",
      "tether/v1/provisioning/+/+/request",
      "#",
    ]) {
      await expect(claim.subscribeAsync(topic, { qos: 1 }), topic).rejects.toMatchObject({ packet: { granted: [128] } });
    }
    await claim.publishAsync("tether/v1/provisioning/tether/SN-1/request", "x", { qos: 1 });
    const closed = new Promise<void>((r) => claim.once("close", () => r()));
    claim.publish(uplinkTopic("dev-a"), "spoofed", { qos: 0 });
    await closed;
  });

  it("closes within a second while clients are connected", async () => {
    const b = await startBroker();
    const dev = await connectOk({ clientId: "dev-a", cert: devA.cert, key: devA.key }, b.port);
    await dev.subscribeAsync(downlinkTopic("dev-a"), { qos: 1 });
    await connectOk({ clientId: "tether-bridge-5", cert: service.cert, key: service.key }, b.port);
    const pending = await connect(b.port, { clientId: "dev-b", cert: devB.cert, key: devB.key });
    expect(pending.client).toBeDefined();
    const started = Date.now();
    await b.close();
    expect(Date.now() - started).toBeLessThan(1_000);
    await until(() => !dev.connected);
  });
});
