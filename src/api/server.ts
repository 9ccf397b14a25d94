import { setMaxListeners } from "node:events";
import http2 from "node:http2";
import type { AddressInfo, Socket } from "node:net";
import type { ConnectRouter, Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { Logger } from "pino";
import { contextValuesFromRequest } from "./auth.js";

export interface ApiServerOptions {
  host: string;
  port: number;
  tls: { key: string; cert: string; ca: string };
  routes: (router: ConnectRouter) => void;
  interceptors: Interceptor[];
  /** Largest request message accepted, in bytes. */
  readMaxBytes: number;
  log: Logger;
}

export interface ApiServer {
  port: number;
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
  // Every call's signal listens to this one; hundreds in flight are normal, not a leak.
  setMaxListeners(0, shutdown.signal);
  const handler = connectNodeAdapter({
    routes: opts.routes,
    interceptors: opts.interceptors,
    contextValues: contextValuesFromRequest,
    shutdownSignal: shutdown.signal,
    readMaxBytes: opts.readMaxBytes,
  });
  const server = http2.createSecureServer(
    { ...opts.tls, requestCert: true, rejectUnauthorized: false, allowHTTP1: true, minVersion: "TLSv1.2" },
    handler,
  );
  // http2 close() waits for sessions that clients keep alive; track them to end them on shutdown.
  const sessions = new Set<http2.ServerHttp2Session>();
  const sockets = new Set<Socket>();
  server.on("session", (s) => {
    sessions.add(s);
    s.once("close", () => sessions.delete(s));
  });
  server.on("secureConnection", (sock: Socket) => {
    sockets.add(sock);
    sock.once("close", () => sockets.delete(sock));
  });
  server.on("tlsClientError", (err) => opts.log.debug({ err: err.message }, "TLS handshake failed"));

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  opts.log.info({ host: opts.host, port }, "API listening (gRPC, gRPC-Web, Connect; mTLS)");

  return {
    port,
    async close(graceMs) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sessions) s.close(); // GOAWAY: no new streams, running ones finish
      const drained = await Promise.race([closed.then(() => true), delay(graceMs / 2).then(() => false)]);
      if (!drained) {
        // Long-lived streams (watches) end when their handler context is aborted.
        shutdown.abort(new Error("server is shutting down"));
        await Promise.race([closed, delay(graceMs / 2)]);
      }
      for (const s of sessions) s.destroy();
      for (const sock of sockets) sock.destroy();
      await closed;
      opts.log.info("API closed");
    },
  };
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}
