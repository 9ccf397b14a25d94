import { create, fromBinary, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import mqtt, { type MqttClient } from "mqtt";
import { type Downlink, DownlinkSchema } from "../../gen/tether/device/v1/downlink_pb.js";
import { UplinkSchema } from "../../gen/tether/device/v1/uplink_pb.js";
import { downlinkTopic, uplinkTopic } from "../../src/protocol/topics.js";
import { ensureDevPki, issueDeviceCertificate } from "../../src/pki/dev-pki.js";
import { CoffeeMachineSim, type CoffeeMachineSimOptions } from "../../src/core/products/coffee-machine-sim.js";
import { LedSim } from "../../src/core/products/led-sim.js";
import { ThermostatSim, type ThermostatSimOptions } from "../../src/core/products/thermostat-sim.js";
import { startSimulator, type SimClockOptions, type SimConnectOptions } from "../../src/sim/simulator.js";
import type { TestStack } from "./stack.js";

/** A device identity issued by the stack's CA, as a factory would provision it. */
export async function deviceCredentials(s: TestStack, deviceId: string) {
  const pki = await ensureDevPki(s.certsDir);
  const cert = await issueDeviceCertificate(pki.ca, deviceId);
  return { url: s.mqttUrl, deviceId, cert: cert.certPem, key: cert.keyPem, ca: pki.caPem, reconnectPeriodMs: 200 };
}

/** A simulated LED on any broker. */
export function startLedSim(conn: SimConnectOptions) {
  return startSimulator(new LedSim(), conn);
}

/** A simulated coffee machine on any broker; `conn` also carries its options (`brewMs`, levels). */
export function startCoffeeSim(conn: SimConnectOptions & CoffeeMachineSimOptions) {
  return startSimulator(new CoffeeMachineSim(conn), conn);
}

export async function coffeeSim(s: TestStack, deviceId: string, opts: CoffeeMachineSimOptions = {}) {
  return startCoffeeSim({ ...(await deviceCredentials(s, deviceId)), brewMs: 400, cleanMs: 200, ...opts });
}

export async function ledSim(s: TestStack, deviceId: string) {
  return startLedSim(await deviceCredentials(s, deviceId));
}

/** A simulated thermostat on the stack's broker, its clock ticking every `tickMs`. */
export async function thermostatSim(s: TestStack, deviceId: string, opts: ThermostatSimOptions & SimClockOptions = {}) {
  return startSimulator(new ThermostatSim(opts), { ...(await deviceCredentials(s, deviceId)), ...opts });
}

/**
 * A hand-driven device on a bare MQTT client: it sends exactly the uplink a test scripts, so
 * tests can play duplicates, pulls and silence that the SDK would never produce.
 */
export async function rawDevice(s: TestStack, deviceId: string) {
  const c = await deviceCredentials(s, deviceId);
  const client: MqttClient = await mqtt.connectAsync(c.url, { clientId: deviceId, cert: c.cert, key: c.key, ca: c.ca, protocolVersion: 4, reconnectPeriod: 0 });
  const received: Downlink[] = [];
  const waiters: Array<() => void> = [];
  client.on("message", (_t, payload) => {
    received.push(fromBinary(DownlinkSchema, payload));
    for (const w of waiters.splice(0)) w();
  });
  await client.subscribeAsync(downlinkTopic(deviceId), { qos: 1 });
  return {
    client,
    received,
    async send(body: MessageInitShape<typeof UplinkSchema>["body"]) {
      const up = create(UplinkSchema, { messageId: crypto.randomUUID(), body });
      await client.publishAsync(uplinkTopic(deviceId), Buffer.from(toBinary(UplinkSchema, up)), { qos: 1 });
    },
    async publishRaw(topic: string, payload: Buffer | string) {
      await client.publishAsync(topic, payload, { qos: 1 });
    },
    /** Waits until `n` downlink messages have arrived in total. */
    async waitFor(n: number, timeoutMs = 5000): Promise<Downlink[]> {
      const deadline = Date.now() + timeoutMs;
      while (received.length < n) {
        if (Date.now() > deadline) throw new Error(`${deviceId} got ${received.length} downlink messages, expected ${n}`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 50);
        });
      }
      return received;
    },
    close: () => client.endAsync(true),
  };
}

/** Polls `fn` until it returns a truthy value (or throws after `timeoutMs`). */
export async function eventually<T>(fn: () => Promise<T | undefined | false>, timeoutMs = 8000, what = "condition"): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
