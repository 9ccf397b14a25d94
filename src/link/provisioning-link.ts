import { fromBinary, toBinary } from "@bufbuild/protobuf";
import mqtt, { type MqttClient } from "mqtt";
import type { Logger } from "pino";
import {
  type ProvisioningRequest,
  ProvisioningRequestSchema,
  type ProvisioningResponse,
  ProvisioningResponseSchema,
} from "../../gen/tether/device/v1/provisioning_pb.js";
import { assertWithinBounds } from "../core/device-bounds.js";
import type { Counters } from "../core/ports/index.js";
import { ALL_PROVISIONING_REQUESTS, parseProvisioningTopic, provisioningResponseTopic } from "../protocol/topics.js";

export interface ProvisioningLinkOptions {
  url: string;
  tls: { ca: string; cert: string; key: string };
  clientId: string;
  maxPayloadBytes: number;
  counters: Counters;
  log: Logger;
  /** Answers one request; the template comes from the topic. */
  handle(templateId: string, req: ProvisioningRequest): Promise<ProvisioningResponse>;
}

/**
 * Zero-touch provisioning over MQTT: consumes `tether/v1/provisioning/{template}/{client}/request`
 * and answers on `…/response`. Its own session, so the device bridge is untouched. With several
 * replicas each answers; provisioning is idempotent per (serial, key), so the device gets the
 * same certificate whichever answer it reads.
 */
export async function connectProvisioningLink(opts: ProvisioningLinkOptions): Promise<{ close(): Promise<void> }> {
  const { log } = opts;
  const client: MqttClient = await mqtt.connectAsync(opts.url, {
    clientId: opts.clientId,
    ca: opts.tls.ca,
    cert: opts.tls.cert,
    key: opts.tls.key,
    protocolVersion: 4,
    clean: true,
    reconnectPeriod: 1000,
    connectTimeout: 10_000,
  });
  client.on("error", (err) => log.warn({ err: err.message }, "provisioning link error"));
  const inFlight = new Set<Promise<void>>();
  client.on("message", (topic, payload) => {
    const t = parseProvisioningTopic(topic);
    if (t?.channel !== "request") return;
    let req: ProvisioningRequest;
    try {
      if (payload.length > opts.maxPayloadBytes) throw new Error("oversized");
      req = fromBinary(ProvisioningRequestSchema, payload);
    } catch (err) {
      opts.counters.inc("tether_provisioning_dropped_total", { reason: "malformed" });
      log.warn({ topic, err: (err as Error).message }, "provisioning request dropped");
      return;
    }
    const work = opts
      .handle(t.templateId, req)
      .then((res) => {
        assertWithinBounds(ProvisioningResponseSchema, res);
        return client.publishAsync(provisioningResponseTopic(t.templateId, t.clientId), Buffer.from(toBinary(ProvisioningResponseSchema, res)), { qos: 1 });
      })
      .then(
        () => undefined,
        (err: unknown) => log.error({ err, topic }, "provisioning answer not sent"),
      );
    inFlight.add(work);
    void work.finally(() => inFlight.delete(work));
  });
  await client.subscribeAsync(ALL_PROVISIONING_REQUESTS, { qos: 1 });
  log.info("mqtt provisioning link consuming requests");
  return {
    async close() {
      await client.unsubscribeAsync(ALL_PROVISIONING_REQUESTS).catch(() => {});
      await Promise.all(inFlight);
      await client.endAsync();
    },
  };
}
