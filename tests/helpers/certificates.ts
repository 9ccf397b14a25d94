import mqtt, { type MqttClient } from "mqtt";
import type { TestStack, Pem } from "./stack.js";

/** A PEM identity as the API test clients take it. */
export function pem(s: TestStack, cert: string, key: string): Pem {
  return { ca: s.admin.ca, cert: Buffer.from(cert), key: Buffer.from(key) };
}

/**
 * Connects to the stack's broker with a certificate, without retries. Resolves with the client, or
 * with the reason the broker refused (CONNACK "Not authorized", a TLS alert or a closed socket).
 */
export function mqttConnect(s: TestStack, clientId: string, cert: string, key: string): Promise<{ client?: MqttClient; error?: string }> {
  const client = mqtt.connect(`mqtts://127.0.0.1:${s.app.mqttPort}`, {
    clientId,
    cert,
    key,
    ca: s.admin.ca,
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
  });
  return new Promise((resolve) => {
    client.once("connect", () => resolve({ client }));
    client.once("error", (err) => {
      client.end(true);
      resolve({ error: err.message || String(err) });
    });
    client.once("close", () => resolve({ error: "closed" }));
  });
}
