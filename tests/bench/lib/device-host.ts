/**
 * The device side of the benchmark: the simulated LED fleet (Tether's own device SDK) and, for the
 * raw MQTT baseline, bare echo clients. It runs in a worker thread by default (see device-side.ts),
 * so 1,000 device MQTT clients do not compete with Tether for the main event loop — on a real
 * deployment they are other machines.
 */
import { getHeapStatistics } from "node:v8";
import mqtt, { type MqttClient } from "mqtt";
import { downlinkTopic } from "../../../src/protocol/topics.js";
import { ensureDevPki, issueDeviceCertificate, issueServiceCertificate } from "../../../src/pki/dev-pki.js";
import { type Fleet, startFleet } from "../../../src/sim/fleet.js";

export interface FleetRequest {
  /** `mqtts://127.0.0.1:{port}` of the embedded broker. */
  url: string;
  /** Tether's PKI folder; device certificates are issued by its CA. */
  certsDir: string;
  count: number;
  idPrefix: string;
  connectConcurrency: number;
}

export interface StartResult {
  connected: number;
  ms: number;
}

export interface DeviceHostStats {
  devices: number;
  executions: number;
  duplicates: number;
  echoClients: number;
  echoed: number;
  heapUsed: number;
  heapTotal: number;
}

export interface DeviceHost {
  startFleet(req: FleetRequest): Promise<StartResult>;
  /**
   * Bare MQTT echo clients: each subscribes to Tether's downlink topic for its id
   * (`tether/v1/devices/{id}/down`) and publishes whatever arrives to `{echoPrefix}/{id}/up`.
   *
   * They connect with a service certificate (CN `tether`), not a device one: every topic a device
   * may publish to (up, up/json, presence, metrics/+) is consumed by Tether's bridge, which would
   * then process the echoes too. A service client may use a topic nobody else subscribes to.
   */
  startEcho(req: FleetRequest & { echoPrefix: string }): Promise<StartResult>;
  stats(): Promise<DeviceHostStats>;
  stop(): Promise<void>;
}

export function createDeviceHost(): DeviceHost {
  let fleet: Fleet | undefined;
  const echo: MqttClient[] = [];
  let echoed = 0;
  const pkiFor = (dir: string) => ensureDevPki(dir);

  return {
    async startFleet(req) {
      const t0 = performance.now();
      const pki = await pkiFor(req.certsDir);
      fleet = await startFleet({
        url: req.url,
        ca: pki.caPem,
        issue: (id) => issueDeviceCertificate(pki.ca, id),
        kind: "led",
        count: req.count,
        idPrefix: req.idPrefix,
        connectConcurrency: req.connectConcurrency,
        reconnectPeriodMs: 500,
      });
      return { connected: fleet.devices.length, ms: performance.now() - t0 };
    },

    async startEcho(req) {
      const t0 = performance.now();
      const pki = await pkiFor(req.certsDir);
      const ids = Array.from({ length: req.count }, (_, i) => `${req.idPrefix}-${i + 1}`);
      const service = await issueServiceCertificate(pki.ca, "tether");
      for (let i = 0; i < ids.length; i += req.connectConcurrency) {
        const batch = await Promise.all(
          ids.slice(i, i + req.connectConcurrency).map(async (id) => {
            const client = await mqtt.connectAsync(req.url, {
              clientId: id,
              ca: pki.caPem,
              cert: service.certPem,
              key: service.keyPem,
              protocolVersion: 4,
              clean: true,
              reconnectPeriod: 0,
            });
            const up = `${req.echoPrefix}/${id}/up`;
            client.on("message", (_topic, payload) => {
              echoed++;
              client.publish(up, payload, { qos: 1 });
            });
            await client.subscribeAsync(downlinkTopic(id), { qos: 1 });
            return client;
          }),
        );
        echo.push(...batch);
      }
      return { connected: echo.length, ms: performance.now() - t0 };
    },

    async stats() {
      const heap = getHeapStatistics();
      return {
        devices: fleet?.devices.length ?? 0,
        executions: fleet?.executions() ?? 0,
        duplicates: fleet?.duplicates() ?? 0,
        echoClients: echo.length,
        echoed,
        heapUsed: heap.used_heap_size,
        heapTotal: heap.total_heap_size,
      };
    },

    async stop() {
      await Promise.allSettled(echo.splice(0).map((c) => c.endAsync(true)));
      await fleet?.stop();
    },
  };
}
