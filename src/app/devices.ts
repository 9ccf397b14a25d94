import { hostname } from "node:os";
import { createDeviceService } from "../core/devices/device-service.js";
import { createDeviceWatch } from "../core/devices/device-watch.js";
import { startLinkPresence } from "../core/devices/link-presence.js";
import { toSampleProto } from "../core/telemetry/sample.js";
import { createAmqpLink } from "../link/amqp-link.js";
import { bridgeTls } from "../link/bridge-tls.js";
import type { PresenceNotes } from "../link/broker-presence.js";
import { startEmbeddedBroker } from "../link/embedded-broker.js";
import { connectMqttBridge } from "../link/mqtt-bridge.js";
import type { CertificateChecks, Certificates } from "./certificates.js";
import type { Infrastructure } from "./infrastructure.js";

/** Bytes of a device PUBLISH besides its payload: topic (≤ ~170 bytes in the scheme), its length and a packet id. */
const MQTT_PACKET_OVERHEAD = 1024;

/** A promise the embedded broker waits on before letting devices in, and the call that settles it. */
export function deviceAdmission() {
  let admit = () => {};
  const admitted = new Promise<void>((resolve) => (admit = resolve));
  return { admitted, admit };
}

/**
 * Devices reach Tether through the embedded broker unless MQTT_URL names an external one
 * (Mosquitto) or TETHER_DEVICE_LINK=amqp puts them on RabbitMQ's MQTT plugin. Its devices
 * connect only once `admission.admit()` runs (uplink has a consumer then).
 */
export async function startEmbeddedBrokerIfUsed(x: Infrastructure, checks: CertificateChecks, admission: ReturnType<typeof deviceAdmission>) {
  const { config } = x;
  if (config.deviceLink !== "embedded" || config.mqttLink.url) return undefined;
  const broker = await startEmbeddedBroker({
    host: config.mqtt.host,
    port: config.mqtt.port,
    tls: x.tls,
    counters: x.counters,
    isRevoked: checks.isRevoked,
    checkCertificate: checks.checkCertificate,
    admitDevices: admission.admitted,
    log: x.log.child({ component: "mqtt" }),
    // The payload limit plus room for the topic and packet id; the bridge's downlink carries API requests.
    maxPacketBytes: config.mqtt.maxPayloadBytes + MQTT_PACKET_OVERHEAD,
    maxServicePacketBytes: Math.max(config.api.readMaxBytes, config.mqtt.maxPayloadBytes) + 64 * 1024,
    livenessIntervalMs: config.presence.livenessIntervalS * 1000,
  });
  x.life.add({ name: "embedded broker", stop: () => broker.close() });
  return broker;
}

/** The device link: the MQTT bridge (embedded or external broker) or, devices on RabbitMQ, the AMQP link. */
export async function connectDeviceLink(x: Infrastructure, brokerPort: number | undefined, presenceNotes?: PresenceNotes) {
  const { config, amqp, counters } = x;
  const uplinkLimit = { ratePerS: config.mqtt.uplinkRatePerS, burst: config.mqtt.uplinkBurst };
  const bridgeClientId = config.mqttLink.clientId ?? `tether-${hostname()}-${process.pid}`;
  const mqttBridge =
    config.deviceLink === "amqp" && amqp
      ? undefined
      : await connectMqttBridge({
          url: config.mqttLink.url ?? `mqtts://${config.mqtt.host === "0.0.0.0" ? "127.0.0.1" : config.mqtt.host}:${brokerPort}`,
          tls: await bridgeTls(config.mqttLink, x.pki),
          clientId: bridgeClientId,
          keepaliveS: config.mqttLink.keepaliveS,
          sessionExpiryS: config.mqttLink.url ? config.mqttLink.sessionExpiryS : 0,
          // Replicas on an external broker split the uplink between them (MQTT 5 shared subscriptions).
          sharedGroup: config.mqttLink.url ? config.mqttLink.sharedGroup : undefined,
          presenceNotes,
          maxPayloadBytes: config.mqtt.maxPayloadBytes,
          uplinkLimit,
          counters,
          log: x.log.child({ component: "bridge" }),
        });
  const bridge =
    mqttBridge ??
    createAmqpLink({
      session: amqp!.session,
      prefix: config.amqp.prefix,
      queueType: config.amqp.queueType,
      maxPayloadBytes: config.mqtt.maxPayloadBytes,
      uplinkLimit,
      prefetch: config.amqp.prefetch,
      counters,
      log: x.log.child({ component: "amqp-link" }),
    });
  x.life.add({ name: "device link", stop: () => bridge.close() });
  // An external broker can become unreachable while Tether runs: devices are then reported
  // offline until their presence is heard again (the embedded broker lives and dies with Tether).
  if (config.mqttLink.url && mqttBridge) {
    const stopLinkPresence = startLinkPresence({
      link: mqttBridge,
      devices: x.stores.devices,
      deviceFeed: x.feeds.deviceFeed,
      resyncFeed: x.feeds.presenceResync,
      replica: bridgeClientId,
      clock: x.clock,
      log: x.coreLog,
    });
    x.life.add({ name: "link presence", stop: () => stopLinkPresence() });
  }
  return bridge;
}

export type Bridge = Awaited<ReturnType<typeof connectDeviceLink>>;

/** DeviceService and WatchDevices; a desired-state change is sent to the device and wakes its HTTP polls. */
export function createDeviceApi(
  x: Infrastructure,
  deps: { sendDesiredState: (id: string) => Promise<unknown>; wakePolls: (id: string) => void; certificates: Certificates["certificates"] },
) {
  const { stores, feeds } = x;
  const devices = createDeviceService({
    devices: stores.devices,
    clock: x.clock,
    onDesiredStateChanged: (id) => {
      void deps.sendDesiredState(id);
      deps.wakePolls(id);
    },
    latestTelemetry: async (id) => (await stores.telemetry.latest(id)).map(toSampleProto),
    feed: feeds.deviceFeed,
    templates: stores.provisioning,
    // DeleteDevice's revocations are announced like any other.
    onCertificatesRevoked: (id, revoked) => deps.certificates.announceRevoked(id, revoked),
    userExists: async (name) => (await stores.users.getUser(name)) !== undefined,
  });
  const deviceWatch = createDeviceWatch({ devices: stores.devices, feed: feeds.deviceFeed });
  return { devices, deviceWatch };
}
