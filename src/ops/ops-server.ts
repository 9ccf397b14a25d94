import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";

export interface OpsServerOptions {
  host: string;
  port: number;
  /** Prometheus text exposition. */
  metrics: () => Promise<string>;
  metricsContentType: string;
  /** Readiness: every dependency up. */
  ready: () => boolean;
  /** Dependency → up, shown in the /readyz body. */
  statuses: () => Record<string, boolean>;
  log: Logger;
}

export interface OpsServer {
  port: number;
  /** Liveness and readiness answer 503 from now on (draining), then the port closes. */
  close(): Promise<void>;
}

/**
 * Plain HTTP for the machines that operate Tether: `/metrics` for Prometheus, `/healthz`
 * (liveness: the process serves) and `/readyz` (readiness: every dependency answers) for
 * Kubernetes probes and load balancers. Separate from the mTLS API port because scrapers and
 * kubelets do not carry client certificates; bind it to an internal interface.
 */
export async function startOpsServer(opts: OpsServerOptions): Promise<OpsServer> {
  let draining = false;
  const server = http.createServer((req, res) => {
    const url = (req.url ?? "/").split("?")[0];
    const send = (status: number, body: string, type = "text/plain; charset=utf-8") => {
      res.writeHead(status, { "content-type": type, "cache-control": "no-store", "x-content-type-options": "nosniff" });
      res.end(body);
    };
    if (req.method !== "GET" && req.method !== "HEAD") return send(405, "method not allowed\n");
    switch (url) {
      case "/metrics":
        opts.metrics().then(
          (text) => send(200, text, opts.metricsContentType),
          (err: unknown) => {
            opts.log.error({ err }, "metrics scrape failed");
            send(500, "metrics unavailable\n");
          },
        );
        return;
      case "/healthz":
        return draining ? send(503, "draining\n") : send(200, "ok\n");
      case "/readyz": {
        const body = JSON.stringify({ ready: !draining && opts.ready(), dependencies: opts.statuses() }) + "\n";
        return send(!draining && opts.ready() ? 200 : 503, body, "application/json");
      }
      default:
        return send(404, "not found: try /metrics, /healthz or /readyz\n");
    }
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  opts.log.info({ url: `http://${opts.host}:${port}/metrics` }, "operations endpoint listening");
  return {
    port,
    async close() {
      draining = true;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
