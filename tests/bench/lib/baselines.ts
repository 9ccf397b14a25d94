/**
 * Baselines measured in the same run, on the same machine and the same embedded broker / server
 * transport, so Tether's task figures can be read as a multiple of what the layers below cost.
 */
import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import mqtt from "mqtt";
import { pino } from "pino";
import { Health, HealthCheckRequestSchema } from "../../../gen/grpc/health/v1/health_pb.js";
import { authInterceptor } from "../../../src/api/auth.js";
import { errorMappingInterceptor } from "../../../src/api/errors.js";
import { createHealthService } from "../../../src/api/health.js";
import { startApiServer } from "../../../src/api/server.js";
import { downlinkTopic } from "../../../src/protocol/topics.js";
import { closedLoop, type ClosedLoopResult } from "./closed-loop.js";
import { FULL_ACCESS } from "../../../src/core/access/access.js";

export interface Pem {
  ca: string;
  cert: string;
  key: string;
}

export interface BaselineResult {
  single: ClosedLoopResult;
  loaded: ClosedLoopResult;
}

/**
 * Raw MQTT QoS 1 command round trip: a service client publishes a small payload to an echo
 * client's `tether/v1/devices/{id}/down` topic; the echo client publishes it back to
 * `{echoPrefix}/{id}/up` (a topic Tether's bridge does not consume); the service client, subscribed
 * to `{echoPrefix}/+/up`, stops the clock.
 */
export async function mqttRoundTrip(opts: {
  url: string;
  service: Pem;
  clientId: string;
  echoIds: string[];
  echoPrefix: string;
  payloadBytes: number;
  seconds: { single: number; loaded: number };
  inflight: number;
}): Promise<BaselineResult> {
  const client = await mqtt.connectAsync(opts.url, { clientId: opts.clientId, ...opts.service, protocolVersion: 4, clean: true, reconnectPeriod: 0 });
  try {
    const waiters = new Map<number, () => void>();
    client.on("message", (_topic, payload) => {
      const seq = payload.readUInt32BE(0);
      const w = waiters.get(seq);
      waiters.delete(seq);
      w?.();
    });
    await client.subscribeAsync(`${opts.echoPrefix}/+/up`, { qos: 1 });
    const topics = opts.echoIds.map(downlinkTopic);
    let seq = 0;
    const roundTrip = (i: number) =>
      new Promise<void>((resolve, reject) => {
        const id = ++seq >>> 0;
        const payload = Buffer.alloc(opts.payloadBytes, 0x2a);
        payload.writeUInt32BE(id, 0);
        const timer = setTimeout(() => {
          waiters.delete(id);
          reject(new Error("echo not received within 5 s"));
        }, 5000);
        waiters.set(id, () => {
          clearTimeout(timer);
          resolve();
        });
        client.publish(topics[i % topics.length]!, payload, { qos: 1 });
      });
    await closedLoop(opts.inflight, 0.5, roundTrip); // warm-up
    const single = await closedLoop(1, opts.seconds.single, roundTrip);
    const loaded = await closedLoop(opts.inflight, opts.seconds.loaded, roundTrip);
    return { single, loaded };
  } finally {
    await client.endAsync(true);
  }
}

/**
 * The bare echo's server: a second connect-node HTTP/2 TLS server built by the same
 * `startApiServer` as Tether's API (same TLS and mTLS options, same interceptors), serving only
 * grpc.health.v1.Health; `Check` is the echo. Started in Tether's process (tether-process.ts).
 */
export async function startEchoServer(tls: { key: string; cert: string; ca: string }): Promise<{ port: number; close(): Promise<void> }> {
  const log = pino({ level: "silent" });
  const health = createHealthService();
  const server = await startApiServer({
    host: "127.0.0.1",
    port: 0,
    tls,
    routes: (router) => health.routes(router),
    interceptors: [
      errorMappingInterceptor(log),
      authInterceptor({
        authenticate: async () => {
          throw new Error("no bearer tokens in the baseline");
        },
        accessFor: async () => FULL_ACCESS,
        log,
      }),
    ],
    readMaxBytes: 4 * 1024 * 1024,
    log,
  });
  return {
    port: server.port,
    async close() {
      health.shutdown();
      await server.close(1000);
    },
  };
}

/**
 * A bare unary echo on the same server transport as Tether's API (`startEchoServer`), driven by
 * the same connect-node gRPC transport the task phases use.
 */
export async function rpcEcho(opts: { port: number; client: Pem; seconds: { single: number; loaded: number }; inflight: number }): Promise<BaselineResult> {
  const baseUrl = `https://localhost:${opts.port}`;
  const sessions = new Http2SessionManager(baseUrl, {}, { ca: opts.client.ca, cert: opts.client.cert, key: opts.client.key });
  try {
    const client = createClient(Health, createGrpcTransport({ baseUrl, sessionManager: sessions }));
    const req = create(HealthCheckRequestSchema, { service: "" });
    const call = async () => {
      await client.check(req);
    };
    await closedLoop(opts.inflight, 0.5, call); // warm-up
    const single = await closedLoop(1, opts.seconds.single, call);
    const loaded = await closedLoop(opts.inflight, opts.seconds.loaded, call);
    return { single, loaded };
  } finally {
    sessions.abort();
  }
}
