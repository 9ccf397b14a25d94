import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { DescService } from "@bufbuild/protobuf";
import { type Client, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { type App, startApp } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { createGrpcJsClient, type GrpcJsClient } from "../../src/api/grpc-js-client.js";
import type { Clock } from "../../src/core/clock.js";
import { createLogger, type Logger } from "../../src/log.js";

export interface Pem {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

/** A Tether started in-process on ephemeral ports, in its own temp directory. */
export interface TestStack {
  app: App;
  dir: string;
  baseUrl: string;
  /** Where devices connect: the embedded broker, or MQTT_URL when the test gave one. */
  mqttUrl: string;
  /** The PKI folder (TETHER_CERTS_DIR). */
  certsDir: string;
  /** `http://127.0.0.1:{port}` of /metrics, /healthz and /readyz. */
  opsUrl: string;
  admin: Pem;
  /** Starts the same data and certs directories again after `app.stop()`. */
  restart(): Promise<void>;
  cleanup(): Promise<void>;
}

/** `log` replaces the silent test logger (e.g. to capture output); `clock` drives the app's time. */
export async function startTestStack(env: Record<string, string> = {}, opts: { log?: Logger; clock?: Clock } = {}): Promise<TestStack> {
  const dir = await mkdtemp(path.join(tmpdir(), "tether-test-"));
  const config = loadConfig(
    {
      TETHER_PORT: "0",
      TETHER_MQTT_PORT: "0",
      TETHER_DATA_DIR: "data",
      TETHER_CERTS_DIR: "certs",
      TETHER_SHUTDOWN_GRACE_MS: "2000",
      TETHER_METRICS_PORT: "0",
      TETHER_METRICS_HOST: "127.0.0.1",
      ...productionTestEnv(env),
      ...env,
    },
    dir,
  );
  const log = opts.log ?? createLogger(process.env.TEST_LOG_LEVEL ?? "silent");
  const stack: TestStack = {
    app: await startApp(config, log, opts.clock),
    dir,
    baseUrl: "",
    mqttUrl: "",
    certsDir: config.certsDir,
    opsUrl: "",
    admin: undefined as unknown as Pem,
    async restart() {
      stack.app = await startApp(config, log, opts.clock);
      addresses();
    },
    async cleanup() {
      await stack.app.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
  const addresses = () => {
    stack.baseUrl = `https://localhost:${stack.app.apiPort}`;
    stack.mqttUrl = config.mqttLink.url ?? `mqtts://127.0.0.1:${stack.app.mqttPort}`;
    stack.opsUrl = `http://127.0.0.1:${stack.app.metricsPort}`;
  };
  addresses();
  const certs = config.certsDir; // TETHER_CERTS_DIR may point outside `dir` (replicas sharing one PKI)
  stack.admin = {
    ca: await readFile(path.join(certs, "ca.crt")),
    cert: await readFile(path.join(certs, "admin.crt")),
    key: await readFile(path.join(certs, "admin.key")),
  };
  return stack;
}

/**
 * Production mode (DATABASE_URL or AMQP_URL) refuses to start without a signing-key secret: tests
 * give one, the same in every stack and replica of a run so they can open each other's keys.
 */
export const TEST_SIGNING_KEY_SECRET = "tether-tests-only-signing-key-secret-0123456789";

export function productionTestEnv(env: Record<string, string | undefined>): Record<string, string> {
  return env.DATABASE_URL || env.AMQP_URL ? { TETHER_SIGNING_KEY_SECRET: TEST_SIGNING_KEY_SECRET } : {};
}

export type Protocol = "connect" | "grpc" | "grpc-web";

/** A connect-node transport speaking `protocol` with the given client identity (or none). */
export function transport(baseUrl: string, protocol: Protocol, pem: Partial<Pem>): Transport {
  const nodeOptions = { ca: pem.ca, cert: pem.cert, key: pem.key };
  if (protocol === "grpc") return createGrpcTransport({ baseUrl, nodeOptions });
  if (protocol === "grpc-web") return createGrpcWebTransport({ baseUrl, httpVersion: "2", nodeOptions });
  return createConnectTransport({ baseUrl, httpVersion: "1.1", nodeOptions });
}

export function connectClient<S extends DescService>(s: TestStack, service: S, protocol: Protocol, pem: Partial<Pem> = s.admin): Client<S> {
  return createClient(service, transport(s.baseUrl, protocol, pem));
}

/** A @grpc/grpc-js client over mTLS: what a typical mobile/desktop gRPC app uses. */
export function grpcJsClient<S extends DescService>(s: TestStack, service: S, pem: Partial<Pem> = s.admin): GrpcJsClient<S> {
  const creds = grpc.credentials.createSsl(pem.ca ?? null, pem.key ?? null, pem.cert ?? null);
  return createGrpcJsClient(service, `localhost:${s.app.apiPort}`, creds);
}

/** A port that was free a moment ago, for tests that restart a server on the same address. */
export async function freePort(): Promise<number> {
  const net = await import("node:net");
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as import("node:net").AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}
