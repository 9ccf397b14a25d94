import { setMaxListeners } from "node:events";
import http2 from "node:http2";
import type { AddressInfo, Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import type { ConnectRouter, Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { Logger } from "pino";
import { contextValuesFromRequest, kPeerAddress } from "./auth.js";
import { createProxyListener } from "./proxy-protocol.js";
import { answerUnknownMethod } from "./unknown-method.js";
import { normalizeSerial } from "../core/certificates/certificate-name.js";

export interface ApiServerOptions {
  host: string;
  port: number;
  tls: { key: string; cert: string; ca: string };
  routes: (router: ConnectRouter) => void;
  interceptors: Interceptor[];
  /** Largest request message accepted, in bytes. */
  readMaxBytes: number;
  /** Peers that may send a PROXY protocol header naming the client (see proxy-protocol.ts). @default [] */
  trustedProxies?: readonly string[];
  /** HTTP/2 streams one connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS). @default 100 */
  maxConcurrentStreams?: number;
  /** `Strict-Transport-Security` max-age on every response, s; 0 = none. @default 0 */
  hstsMaxAgeS?: number;
  /** JSON requests with fields the message does not have: refused (INVALID_ARGUMENT) or dropped. @default "ignore" (connect-es's) */
  jsonUnknownFields?: "reject" | "ignore";
  log: Logger;
  /**
   * Plain HTTP routes beside the RPCs (static files, the CRL), tried in order for any request that
   * is not an RPC; the first whose `match` accepts the path answers it. Anything else gets 404.
   */
  http?: HttpRoute[];
}

/**
 * The router's JSON options for a `TETHER_JSON_UNKNOWN_FIELDS` setting. connect-es ignores unknown
 * JSON fields unless `ignoreUnknownFields` is false; then protobuf-es refuses them and connect
 * answers INVALID_ARGUMENT ("cannot decode message tether.v1.CreateTaskRequest from JSON: key
 * "requestID" is unknown"). Only reading is affected: responses are written as before.
 */
export function jsonReadOptions(setting: "reject" | "ignore"): { ignoreUnknownFields: boolean } {
  return { ignoreUnknownFields: setting === "ignore" };
}

type NodeHandlerFn = NonNullable<Parameters<typeof connectNodeAdapter>[0]["fallback"]>;

/** A non-RPC HTTP endpoint on the API port. */
export interface HttpRoute {
  match(pathname: string): boolean;
  handle: NodeHandlerFn;
  /**
   * The route takes JSON POSTs itself (MCP's JSON-RPC): it is tried before a POST with an RPC
   * content type is answered as a call of an unknown method.
   */
  takesJsonPosts?: boolean;
}

export interface ApiServer {
  port: number;
  /** Cuts open connections whose client certificate is revoked; returns how many. */
  disconnectRevoked(isRevoked: (serialNumber: string) => boolean): number;
  /** Stops accepting, lets in-flight calls finish for up to `graceMs`, then cuts what is left. */
  close(graceMs: number): Promise<void>;
}

/**
 * One HTTP/2 TLS port serving gRPC, gRPC-Web and Connect (and Connect over HTTP/1.1 for curl and
 * browsers). The handshake asks for a client certificate and verifies it against our CA, but
 * does not fail without one: the auth interceptor answers UNAUTHENTICATED with a readable message.
 */
export async function startApiServer(opts: ApiServerOptions): Promise<ApiServer> {
  const shutdown = new AbortController();
  // Assigned below, before the first connection can arrive.
  let clientAddress: (socket: TLSSocket) => string = (s) => s.remoteAddress ?? "";
  // Every call's signal listens to this one; hundreds in flight are normal, not a leak.
  setMaxListeners(0, shutdown.signal);
  const handler = connectNodeAdapter({
    routes: opts.routes,
    interceptors: opts.interceptors,
    contextValues: (req) => {
      const values = contextValuesFromRequest(req);
      values.set(kPeerAddress, clientAddress(req.socket as TLSSocket));
      return values;
    },
    shutdownSignal: shutdown.signal,
    readMaxBytes: opts.readMaxBytes,
    jsonOptions: jsonReadOptions(opts.jsonUnknownFields ?? "ignore"),
    fallback: (req, res) => {
      const pathname = new URL(req.url ?? "/", "https://localhost").pathname;
      const own = opts.http?.find((r) => r.takesJsonPosts && r.match(pathname));
      if (own) return own.handle(req, res);
      if (answerUnknownMethod(req, res)) return;
      const route = opts.http?.find((r) => r.match(pathname));
      if (route) return route.handle(req, res);
      res.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
      res.end("not found\n");
    },
  });
  const hsts = (opts.hstsMaxAgeS ?? 0) > 0 ? `max-age=${opts.hstsMaxAgeS}` : undefined;
  const server = http2.createSecureServer(
    // Node allows unlimited concurrent streams per session unless told: one connection could open thousands of watches.
    {
      ...opts.tls,
      requestCert: true,
      rejectUnauthorized: false,
      allowHTTP1: true,
      minVersion: "TLSv1.2",
      settings: { maxConcurrentStreams: opts.maxConcurrentStreams ?? 100 },
    },
    (req, res) => {
      // On every response of this port, RPCs and errors included (writeHead merges these in).
      res.setHeader("x-content-type-options", "nosniff");
      if (hsts) res.setHeader("strict-transport-security", hsts);
      if (!refuseUnknownContentType(req, res)) handler(req, res);
    },
  );
  // http2 close() waits for sessions that clients keep alive; track them to end them on shutdown.
  const sessions = new Set<http2.ServerHttp2Session>();
  const sockets = new Set<Socket>();
  server.on("session", (s) => {
    sessions.add(s);
    s.once("close", () => sessions.delete(s));
  });
  server.on("secureConnection", (sock: Socket) => {
    // Small responses go out at once rather than waiting on Nagle's algorithm (HTTP/1.1 callers
    // such as curl and HTTP devices see each unary answer as its own small write).
    sock.setNoDelay(true);
    sockets.add(sock);
    sock.once("close", () => sockets.delete(sock));
  });
  server.on("tlsClientError", (err) => opts.log.debug({ err: err.message }, "TLS handshake failed"));

  // The TCP port is a plain listener in front of the TLS server: it reads a trusted proxy's PROXY
  // header before TLS starts, and hands every socket on (with none configured, untouched).
  const front = createProxyListener(server, { trusted: opts.trustedProxies ?? [], log: opts.log });
  clientAddress = front.clientAddress;
  await new Promise<void>((resolve, reject) => {
    front.server.once("error", reject);
    front.server.listen(opts.port, opts.host, () => {
      front.server.off("error", reject);
      resolve();
    });
  });
  const port = (front.server.address() as AddressInfo).port;
  opts.log.info({ host: opts.host, port }, "API listening (gRPC, gRPC-Web, Connect; mTLS)");

  return {
    port,
    disconnectRevoked(isRevoked) {
      let cut = 0;
      for (const sock of sockets) {
        const serial = (sock as TLSSocket).getPeerCertificate?.()?.serialNumber;
        if (serial && isRevoked(normalizeSerial(serial))) {
          sock.destroy();
          cut++;
        }
      }
      if (cut > 0) opts.log.info({ connections: cut }, "API connections with a revoked certificate cut");
      return cut;
    },
    async close(graceMs) {
      // The front listener owns the TCP sockets: it closes once they all have. Closing the HTTP/2
      // server as well ends its idle HTTP/1.1 connections (it never listened itself).
      const closed = new Promise<void>((resolve) => front.server.close(() => resolve()));
      server.close();
      for (const s of sessions) s.close(); // GOAWAY: no new streams, running ones finish
      const drained = await Promise.race([closed.then(() => true), delay(graceMs / 2).then(() => false)]);
      if (!drained) {
        // Long-lived streams (watches) end when their handler context is aborted.
        shutdown.abort(new Error("server is shutting down"));
        await Promise.race([closed, delay(graceMs / 2)]);
      }
      for (const s of sessions) s.destroy();
      for (const sock of sockets) sock.destroy();
      front.destroyAll();
      await closed;
      opts.log.info("API closed");
    },
  };
}

/** Content types of gRPC, gRPC-Web and Connect (unary and streaming), with optional parameters. */
const RPC_CONTENT_TYPE = /^application\/(json|proto|connect\+(json|proto)|grpc(-web(-text)?)?(\+(proto|json))?)\s*(;.*)?$/i;

/**
 * connect-node answers a POST with a content type no protocol claims (curl's default
 * `application/x-www-form-urlencoded`, `text/plain`) with a bare 415 and no body. Answer the same
 * status with a Connect error body that says what to send instead, so curl users see the reason
 * and Connect clients an error code. Returns true when it answered.
 */
function refuseUnknownContentType(req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): boolean {
  if (req.method !== "POST") return false;
  const type = req.headers["content-type"] ?? "";
  if (RPC_CONTENT_TYPE.test(type)) return false;
  const message = `unsupported content-type "${type.slice(0, 100)}": send Content-Type: application/json (Connect JSON) or application/proto (Connect binary); gRPC and gRPC-Web clients set theirs`;
  const body = JSON.stringify({ code: "invalid_argument", message });
  res.writeHead(415, {
    "content-type": "application/json",
    "accept-post": "application/json, application/proto, application/grpc, application/grpc-web",
    "content-length": Buffer.byteLength(body),
  });
  req.resume(); // discard the body
  res.end(body);
  return true;
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}
