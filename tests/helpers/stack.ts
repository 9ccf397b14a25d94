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
import { createLogger } from "../../src/log.js";

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
  admin: Pem;
  /** Starts the same data and certs directories again after `app.stop()`. */
  restart(): Promise<void>;
  cleanup(): Promise<void>;
}

export async function startTestStack(env: Record<string, string> = {}): Promise<TestStack> {
  const dir = await mkdtemp(path.join(tmpdir(), "tether-test-"));
  const config = loadConfig({ TETHER_PORT: "0", TETHER_MQTT_PORT: "0", TETHER_DATA_DIR: "data", TETHER_CERTS_DIR: "certs", TETHER_SHUTDOWN_GRACE_MS: "2000", ...env }, dir);
  const log = createLogger(process.env.TEST_LOG_LEVEL ?? "silent");
  const stack: TestStack = {
    app: await startApp(config, log),
    dir,
    baseUrl: "",
    admin: undefined as unknown as Pem,
    async restart() {
      stack.app = await startApp(config, log);
      stack.baseUrl = `https://localhost:${stack.app.apiPort}`;
    },
    async cleanup() {
      await stack.app.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
  stack.baseUrl = `https://localhost:${stack.app.apiPort}`;
  const certs = path.join(dir, "certs");
  stack.admin = {
    ca: await readFile(path.join(certs, "ca.crt")),
    cert: await readFile(path.join(certs, "admin.crt")),
    key: await readFile(path.join(certs, "admin.key")),
  };
  return stack;
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
