import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { downlinkTopic, uplinkTopic } from "../../src/protocol/topics.js";
import { type DevPki, ensureDevPki, issueDeviceCertificate, issueServiceCertificate } from "../../src/pki/dev-pki.js";
import { eventually } from "../helpers/devices.js";
import { type RunningMosquitto, startMosquitto, writeCrl } from "../helpers/mosquitto.js";

let dir: string;
let pki: DevPki;
let broker: RunningMosquitto;
const clients: MqttClient[] = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "tether-acl-"));
  pki = await ensureDevPki(dir);
  await writeCrl(dir, []);
  broker = await startMosquitto({ certsDir: dir });
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.endAsync(true)));
  await broker?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function connectAs(commonName: string, opts: IClientOptions & { service?: boolean } = {}) {
  const cert = opts.service ? await issueServiceCertificate(pki.ca, commonName) : await issueDeviceCertificate(pki.ca, commonName);
  const c = await mqtt.connectAsync(broker.url, {
    ca: pki.caPem,
    cert: cert.certPem,
    key: cert.keyPem,
    clientId: commonName,
    protocolVersion: 4,
    reconnectPeriod: 0,
    ...opts,
  });
  clients.push(c);
  return c;
}

/** Collects messages per topic. */
function inbox(c: MqttClient) {
  const got: Array<{ topic: string; text: string }> = [];
  c.on("message", (topic, payload) => got.push({ topic, text: payload.toString() }));
  return got;
}

describe("Mosquitto from deploy/mosquitto: device identity", () => {
  it("lets a device publish only its own uplink and Tether read it through the shared subscription", async () => {
    const tether = await connectAs("tether", { service: true, protocolVersion: 5, clientId: "tether-acl-test" });
    const seen = inbox(tether);
    const granted = await tether.subscribeAsync("$share/tether/tether/v1/devices/+/up", { qos: 1 });
    expect(granted[0]!.qos).toBe(1);
    const a = await connectAs("dev-a");
    await a.publishAsync(uplinkTopic("dev-b"), "spoofed by a", { qos: 1 }); // MQTT 3.1.1: acked, then dropped
    await a.publishAsync(uplinkTopic("dev-a"), "from a", { qos: 1 });
    await eventually(async () => seen.some((m) => m.text === "from a"), 10_000, "a's own uplink");
    expect(seen).toEqual([{ topic: uplinkTopic("dev-a"), text: "from a" }]);
    // Tether itself cannot impersonate a device either.
    await tether.publishAsync(uplinkTopic("dev-a"), "spoofed by tether", { qos: 1 }).catch(() => {});
    await a.publishAsync(uplinkTopic("dev-a"), "from a again", { qos: 1 });
    await eventually(async () => seen.some((m) => m.text === "from a again"), 10_000, "a's second uplink");
    expect(seen.map((m) => m.text)).toEqual(["from a", "from a again"]);
  });

  it("refuses a device's subscription to another device's downlink, and delivers it nothing", async () => {
    const tether = await connectAs("tether", { service: true, protocolVersion: 5, clientId: "tether-acl-down" });
    const a = await connectAs("dev-a", { clientId: "dev-a" });
    const b = await connectAs("dev-b");
    const toA = inbox(a);
    const toB = inbox(b);
    // Mosquitto's ACL file grants every SUBSCRIBE and checks `read` on each delivery, so the
    // subscription "succeeds" and nothing ever arrives on it; a wildcard gets no further.
    await a.subscribeAsync(downlinkTopic("dev-b"), { qos: 1 });
    await a.subscribeAsync("tether/v1/devices/+/down", { qos: 1 });
    await a.subscribeAsync("#", { qos: 1 });
    expect((await a.subscribeAsync(downlinkTopic("dev-a"), { qos: 1 }))[0]!.qos).toBe(1);
    expect((await b.subscribeAsync(downlinkTopic("dev-b"), { qos: 1 }))[0]!.qos).toBe(1);
    await tether.publishAsync(downlinkTopic("dev-b"), "for b", { qos: 1 });
    await tether.publishAsync(downlinkTopic("dev-a"), "for a", { qos: 1 });
    await eventually(async () => toB.length === 1 && toA.length >= 1, 10_000, "downlink");
    expect(toB).toEqual([{ topic: downlinkTopic("dev-b"), text: "for b" }]);
    expect(toA.every((m) => m.topic === downlinkTopic("dev-a"))).toBe(true);
    // A device cannot write downlink (to itself or others).
    await a.publishAsync(downlinkTopic("dev-b"), "forged", { qos: 1 });
    await tether.publishAsync(downlinkTopic("dev-b"), "for b again", { qos: 1 });
    await eventually(async () => toB.length === 2, 10_000, "second downlink");
    expect(toB.map((m) => m.text)).toEqual(["for b", "for b again"]);
  });

  it("does not hand a device another device's persistent session by client id", async () => {
    const tether = await connectAs("tether", { service: true, protocolVersion: 5, clientId: "tether-acl-session" });
    const c = await connectAs("dev-c", { clean: false, clientId: "dev-c" });
    await c.subscribeAsync(downlinkTopic("dev-c"), { qos: 1 });
    await c.endAsync();
    await tether.publishAsync(downlinkTopic("dev-c"), "queued for c", { qos: 1 });
    // dev-d takes over dev-c's client id and session: the queued message must not reach it.
    const d = await connectAs("dev-d", { clean: false, clientId: "dev-c" });
    const toD = inbox(d);
    await d.subscribeAsync(downlinkTopic("dev-d"), { qos: 1 });
    await tether.publishAsync(downlinkTopic("dev-d"), "for d", { qos: 1 });
    await eventually(async () => toD.some((m) => m.text === "for d"), 10_000, "d's own downlink");
    expect(toD.map((m) => m.text)).toEqual(["for d"]);
  });

  it("refuses a certificate listed in the CRL at connection", async () => {
    const revoked = await issueDeviceCertificate(pki.ca, "dev-revoked");
    const opts = {
      ca: pki.caPem,
      cert: revoked.certPem,
      key: revoked.keyPem,
      clientId: "dev-revoked",
      protocolVersion: 4 as const,
      reconnectPeriod: 0,
      connectTimeout: 5000,
    };
    const ok = await mqtt.connectAsync(broker.url, opts);
    await ok.endAsync();
    await writeCrl(dir, [revoked.serialNumber]);
    broker.reload();
    // SIGHUP makes Mosquitto reload the CRL: no restart needed after a revocation.
    const refusal = await eventually(
      async () => {
        try {
          const c = await mqtt.connectAsync(broker.url, opts);
          await c.endAsync(true);
          return false;
        } catch (err) {
          return err as Error;
        }
      },
      15_000,
      "the revoked certificate to be refused",
    );
    expect(refusal.message).toMatch(/certificate revoked|alert/i);
    // Other devices still connect.
    await (await connectAs("dev-e")).endAsync();
  });
});
