import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import mqtt, { type MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConnectivityEvent_Reason as Reason, ConnectivityEvent_Type as Type } from "../../gen/tether/v1/connectivity_pb.js";
import { CertificateService } from "../../gen/tether/v1/certificate_service_pb.js";
import { DeviceService, WatchDevicesResponse_Type as WatchType } from "../../gen/tether/v1/device_service_pb.js";
import { connectDevice } from "../../src/device/tether-device.js";
import { PRESENCE_OFFLINE, PRESENCE_ONLINE, presenceTopic } from "../../src/protocol/topics.js";
import { deviceCredentials, eventually } from "../helpers/devices.js";
import { connectClient, startTestStack, type TestStack } from "../helpers/stack.js";
import { startTcpProxy, type TcpProxy } from "../helpers/tcp-proxy.js";

/**
 * Presence end to end on the embedded broker: real devices over MQTT, a real Tether, the reasons
 * read back through ListConnectivityEvents and WatchDevices.
 */
let s: TestStack;
let proxy: TcpProxy;
beforeAll(async () => {
  s = await startTestStack({ TETHER_LIVENESS_INTERVAL_S: "1", TETHER_SILENT_AFTER_S: "2", TETHER_SILENT_CHECK_S: "1" });
  proxy = await startTcpProxy({ host: "127.0.0.1", port: s.app.mqttPort });
}, 60_000);
afterAll(async () => {
  await proxy?.close();
  await s?.cleanup();
});

const devices = () => connectClient(s, DeviceService, "grpc");
const createLed = (id: string) => devices().createDevice({ deviceId: id, device: { kind: { case: "led", value: {} } } });
const connectivity = async (id: string) => (await devices().getDevice({ name: `devices/${id}` })).connectivity!;
const events = async (id: string) => (await devices().listConnectivityEvents({ parent: `devices/${id}` })).connectivityEvents;
const lastReason = async (id: string) => (await connectivity(id)).lastEvent?.reason;

/** A bare device as firmware does it: retained `offline` will, retained `online` once connected, nothing else. */
async function bareDevice(id: string, opts: { keepalive?: number; url?: string; cert?: string; key?: string; noWill?: boolean } = {}): Promise<MqttClient> {
  const c = await deviceCredentials(s, id);
  const client = await mqtt.connectAsync(opts.url ?? c.url, {
    clientId: id,
    cert: opts.cert ?? c.cert,
    key: opts.key ?? c.key,
    ca: c.ca,
    protocolVersion: 4,
    reconnectPeriod: 0,
    keepalive: opts.keepalive ?? 60,
    will: opts.noWill ? undefined : { topic: presenceTopic(id), payload: Buffer.from(PRESENCE_OFFLINE), qos: 1, retain: true },
  });
  client.on("error", () => {});
  await client.publishAsync(presenceTopic(id), PRESENCE_ONLINE, { qos: 1, retain: true });
  await eventually(async () => (await connectivity(id)).online, 5000, `${id} online`);
  return client;
}

describe("presence on the embedded broker", () => {
  it("keeps a quiet connected device fresh from its keepalives alone, and reports it silent, not offline", async () => {
    await createLed("quiet-led");
    const client = await bareDevice("quiet-led", { keepalive: 1 });
    const first = timestampDate((await connectivity("quiet-led")).lastSeenTime!).getTime();
    // Only PINGREQs flow (keepalive 1 s); last_seen_time follows them, once per liveness interval.
    const later = await eventually(
      async () => {
        const c = await connectivity("quiet-led");
        return timestampDate(c.lastSeenTime!).getTime() >= first + 2000 && c;
      },
      10_000,
      "last_seen_time moved by keepalives",
    );
    expect(later.online).toBe(true);
    expect(later.lastUplinkTime).toBeUndefined();
    await eventually(async () => (await connectivity("quiet-led")).silent, 10_000, "silent after TETHER_SILENT_AFTER_S");
    expect((await connectivity("quiet-led")).online).toBe(true);
    await client.endAsync(true);
  });

  it("a killed device (its network gone, no FIN) goes offline with reason keepalive timeout and its address", async () => {
    await createLed("killed-led");
    await bareDevice("killed-led", { keepalive: 1, url: `mqtts://127.0.0.1:${proxy.port}` });
    proxy.partition(); // the device's packets stop arriving; the broker's keepalive notices
    try {
      await eventually(async () => !(await connectivity("killed-led")).online, 10_000, "offline after 1.5 × keepalive");
    } finally {
      proxy.restore();
    }
    const [gone, came] = await events("killed-led");
    expect(gone).toMatchObject({ type: Type.DISCONNECTED, reason: Reason.KEEPALIVE_TIMEOUT });
    expect(came).toMatchObject({ type: Type.CONNECTED, reason: Reason.CONNECTED });
    expect(came!.remoteAddress).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  it("tells a closed socket, a clean goodbye and a takeover apart", async () => {
    await createLed("crash-led");
    const crash = await bareDevice("crash-led");
    crash.stream.destroy(); // the process died: the OS closes the socket, no DISCONNECT
    await eventually(async () => (await lastReason("crash-led")) === Reason.CONNECTION_LOST, 10_000, "connection lost");

    await createLed("bye-led");
    const c = await deviceCredentials(s, "bye-led");
    const sdk = await connectDevice({ ...c, handler: async () => ({}) });
    await eventually(async () => (await connectivity("bye-led")).online, 5000, "SDK device online");
    await sdk.close();
    await eventually(async () => (await lastReason("bye-led")) === Reason.CLEAN, 10_000, "clean goodbye");

    await createLed("twin-led");
    const first = await bareDevice("twin-led");
    const second = await bareDevice("twin-led"); // same client id: the broker drops the first session
    await eventually(async () => (await events("twin-led")).some((e) => e.reason === Reason.TAKEN_OVER), 10_000, "taken over");
    await eventually(async () => (await connectivity("twin-led")).online, 10_000, "the second session online");
    await Promise.all([first.endAsync(true), second.endAsync(true)]);
  });

  it("says the offline a session ended without: a DISCONNECT without goodbye is clean, a lost session without a will is lost", async () => {
    await createLed("quiet-bye-led");
    const polite = await bareDevice("quiet-bye-led");
    await polite.endAsync(false); // DISCONNECT: the will is discarded, and the device said no offline
    await eventually(async () => (await lastReason("quiet-bye-led")) === Reason.CLEAN, 10_000, "clean after a bare DISCONNECT");
    expect((await connectivity("quiet-bye-led")).online).toBe(false);

    await createLed("no-will-led");
    const careless = await bareDevice("no-will-led", { noWill: true });
    careless.stream.destroy();
    await eventually(async () => (await lastReason("no-will-led")) === Reason.CONNECTION_LOST, 10_000, "lost without a will");
  });

  it("a revoked device goes offline with reason revoked, seen live on WatchDevices", async () => {
    await createLed("revoked-led");
    const certs = connectClient(s, CertificateService, "grpc");
    const issued = await certs.createCertificate({ parent: "devices/revoked-led", generateKey: true });
    await bareDevice("revoked-led", { cert: issued.certificate!.certificatePem, key: issued.privateKeyPem });
    const watch = devices().watchDevices({ filter: 'name = "devices/revoked-led"' }, { signal: AbortSignal.timeout(20_000) });
    const reasons: Reason[] = [];
    const seen = (async () => {
      for await (const m of watch) {
        if (m.type === WatchType.INITIAL_COMPLETE) void certs.revokeCertificate({ name: issued.certificate!.name });
        if (m.type === WatchType.CHANGED && m.device?.connectivity?.lastEvent) reasons.push(m.device.connectivity.lastEvent.reason);
        if (reasons.includes(Reason.CERTIFICATE_REVOKED)) return;
      }
    })();
    await seen;
    const c = await connectivity("revoked-led");
    expect(c.online).toBe(false);
    expect(c.lastEvent).toMatchObject({ type: Type.DISCONNECTED, reason: Reason.CERTIFICATE_REVOKED });
  });

  it("marks the devices offline with reason server shutdown when Tether stops, and lists the history after the restart", async () => {
    await createLed("stop-led");
    await bareDevice("stop-led");
    await s.app.stop();
    await s.restart();
    await proxy.close();
    proxy = await startTcpProxy({ host: "127.0.0.1", port: s.app.mqttPort });
    const c = await connectivity("stop-led");
    expect(c.online).toBe(false);
    expect(c.lastEvent).toMatchObject({ type: Type.DISCONNECTED, reason: Reason.SERVER_SHUTDOWN });
    expect((await events("stop-led")).map((e) => e.reason)).toEqual([Reason.SERVER_SHUTDOWN, Reason.CONNECTED]);
  }, 60_000);

  it("prints the history with `tether devices connectivity`, and the latest change with `devices get`", async () => {
    const cli = (...args: string[]) =>
      promisify(execFile)(process.execPath, [path.resolve(import.meta.dirname, "../../bin/tether.js"), ...args], {
        env: { ...process.env, TETHER_ADDRESS: s.baseUrl, TETHER_CERTS_DIR: s.certsDir },
      });
    const history = await cli("devices", "connectivity", "stop-led");
    const lines = history.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^TIME\s+EVENT\s+REASON\s+REMOTE ADDRESS$/);
    expect(lines[1]).toMatch(/Z\s+disconnected\s+server_shutdown\s+-$/);
    expect(lines[2]).toMatch(/Z\s+connected\s+connected\s+127\.0\.0\.1:\d+$/);
    const got = await cli("devices", "get", "stop-led");
    expect(got.stdout).toMatch(/last_event\s+disconnected \(server_shutdown\) at \d{4}-/);
  }, 120_000);

  it("answers NOT_FOUND for an unknown device and INVALID_ARGUMENT for a bad parent", async () => {
    await expect(devices().listConnectivityEvents({ parent: "devices/nobody-here" })).rejects.toThrow(/not found|NotFound/i);
    await expect(devices().listConnectivityEvents({ parent: "nobody" })).rejects.toThrow(/parent/);
  });
});
