import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import mqtt, { type MqttClient } from "mqtt";
import { pino } from "pino";
import { DownlinkSchema, type TaskRequest } from "../../gen/tether/device/v1/downlink_pb.js";
import { DeviceGatewayService } from "../../gen/tether/device/v1/gateway_service_pb.js";
import { UplinkSchema } from "../../gen/tether/device/v1/uplink_pb.js";
import { HttpDevice } from "../../src/device/http-device.js";
import { HttpUplink } from "../../src/device/http-uplink.js";
import { TaskExecutor, type TaskHandler, type UplinkBody } from "../../src/device/task-executor.js";
import { downlinkTopic, presenceTopic, PRESENCE_OFFLINE, PRESENCE_ONLINE, uplinkTopic } from "../../src/protocol/topics.js";
import { deviceCredentials } from "./devices.js";
import type { Pem, TestStack } from "./stack.js";

/** A device's certificate as connect-node client options. */
export async function devicePem(s: TestStack, deviceId: string): Promise<Pem> {
  const c = await deviceCredentials(s, deviceId);
  return { ca: Buffer.from(c.ca), cert: Buffer.from(c.cert), key: Buffer.from(c.key) };
}

/** The SDK's HTTP device, with a certificate from the stack's CA. */
export async function httpDevice(s: TestStack, deviceId: string, handler: TaskHandler): Promise<HttpDevice> {
  const c = await deviceCredentials(s, deviceId);
  return new HttpDevice({ baseUrl: s.baseUrl, deviceId, cert: c.cert, key: c.key, ca: c.ca, handler });
}

/** Writes a device's certificate and key as files, for `curl --cert/--key`. */
export async function deviceCertFiles(s: TestStack, deviceId: string) {
  const c = await deviceCredentials(s, deviceId);
  const cert = path.join(s.dir, `${deviceId}.crt`);
  const key = path.join(s.dir, `${deviceId}.key`);
  await writeFile(cert, c.cert);
  await writeFile(key, c.key, { mode: 0o600 });
  return { ca: path.join(s.dir, "certs", "ca.crt"), cert, key };
}

/** Runs the real `curl` binary; resolves with the HTTP status and the body. */
export function curl(args: string[]): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    execFile("/usr/bin/curl", ["-sS", "-w", "\n%{http_code}", ...args], { maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`curl failed: ${stderr || err.message}`));
      const cut = stdout.lastIndexOf("\n");
      resolve({ status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) });
    });
  });
}

/**
 * One device with one task memory and two transports, switched by the test: MQTT (a persistent
 * session, as the SDK keeps one) or HTTP (DeviceGatewayService). `dropHttpUplink` loses what the
 * device sends over HTTP, like a request that never arrives.
 */
export async function dualDevice(s: TestStack, deviceId: string, handler: TaskHandler) {
  const c = await deviceCredentials(s, deviceId);
  const log = pino({ level: "silent" });
  const gateway = createClient(
    DeviceGatewayService,
    createConnectTransport({ baseUrl: s.baseUrl, httpVersion: "1.1", nodeOptions: { ca: c.ca, cert: c.cert, key: c.key } }),
  );
  const http = new HttpUplink(gateway, log);
  let mqttClient: MqttClient | undefined;
  const received: Array<{ via: "mqtt" | "http"; task: TaskRequest }> = [];
  const dev = {
    mode: "mqtt" as "mqtt" | "http",
    dropHttpUplink: false,
    received,
    executor: undefined as unknown as TaskExecutor,
    async connectMqtt() {
      dev.mode = "mqtt";
      const client = await mqtt.connectAsync(c.url, {
        clientId: deviceId,
        cert: c.cert,
        key: c.key,
        ca: c.ca,
        protocolVersion: 4,
        clean: false,
        reconnectPeriod: 0,
        will: { topic: presenceTopic(deviceId), payload: Buffer.from(PRESENCE_OFFLINE), qos: 1, retain: true },
      });
      client.on("message", (_t, payload) => {
        const d = fromBinary(DownlinkSchema, payload);
        if (d.body.case === "task") {
          received.push({ via: "mqtt", task: d.body.value });
          dev.executor.receive(d.body.value);
        }
      });
      mqttClient = client;
      await client.publishAsync(presenceTopic(deviceId), PRESENCE_ONLINE, { qos: 1, retain: true });
      await client.subscribeAsync(downlinkTopic(deviceId), { qos: 1 });
      await publishMqtt({ case: "hello", value: { wantPendingTasks: true } });
    },
    /** Loses the MQTT connection without a goodbye: the broker publishes the `offline` will. */
    async dropMqtt() {
      await mqttClient?.endAsync(true);
      mqttClient = undefined;
      dev.mode = "http";
    },
    /** One HTTP poll; a task it brings is handed to the executor (which de-duplicates). */
    async poll(listenSeconds = 0): Promise<TaskRequest | undefined> {
      const res = await gateway.pollDownlink({ listenDuration: { seconds: BigInt(listenSeconds) } });
      const d = res.downlinks.find((x) => x.body.case === "task");
      if (d?.body.case !== "task") return undefined;
      received.push({ via: "http", task: d.body.value });
      dev.executor.receive(d.body.value);
      return d.body.value;
    },
    async close() {
      dev.executor.stop();
      http.close();
      await mqttClient?.endAsync(true);
    },
  };
  async function publishMqtt(body: UplinkBody) {
    const up = create(UplinkSchema, { messageId: crypto.randomUUID(), body });
    await mqttClient!.publishAsync(uplinkTopic(deviceId), Buffer.from(toBinary(UplinkSchema, up)), { qos: 1 });
  }
  dev.executor = new TaskExecutor({
    handler,
    log,
    cacheSize: 100,
    send: (body) => {
      if (dev.mode === "mqtt" && mqttClient?.connected) void publishMqtt(body).catch(() => {});
      else if (!dev.dropHttpUplink) void http.send(body);
    },
  });
  return dev;
}
