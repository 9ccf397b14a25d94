import type { ConnectRouter, Interceptor } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { HttpRoute } from "../api/server.js";

type Endpoint = (req: Parameters<HttpRoute["handle"]>[0], res: Parameters<HttpRoute["handle"]>[1]) => Promise<void>;

/**
 * `/mcp` on the API port (src/mcp/http-endpoint.ts). The MCP SDK, the tools and the in-process
 * copy of the API's router load on the first request, so a server no assistant talks to starts
 * as fast as before.
 */
export function mcpRoute(o: {
  routes: (router: ConnectRouter) => void;
  interceptors: Interceptor[];
  authenticate(bearer: string): Promise<{ user: string; via: "token" | "api_key"; keyId?: string }>;
  ratePerMin: number;
  readMaxBytes: number;
  log: Logger;
}): HttpRoute {
  let endpoint: Promise<Endpoint> | undefined;
  const load = async (): Promise<Endpoint> => {
    const [{ createMcpEndpoint }, { createInProcessApi }, { createCallLimit }] = await Promise.all([
      import("../mcp/http-endpoint.js"),
      import("../api/in-process.js"),
      import("../mcp/call-limit.js"),
    ]);
    return createMcpEndpoint({
      api: createInProcessApi({ routes: o.routes, interceptors: o.interceptors, readMaxBytes: o.readMaxBytes }),
      authenticate: o.authenticate,
      limit: createCallLimit(o.ratePerMin),
      readMaxBytes: o.readMaxBytes,
      log: o.log,
    });
  };
  return {
    match: (pathname) => pathname === "/mcp",
    takesJsonPosts: true,
    handle: (req, res) => {
      (endpoint ??= load())
        .then((handle) => handle(req, res))
        .catch((err: unknown) => {
          o.log.error({ err }, "MCP request failed");
          if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
          res.end();
        });
    },
  };
}
