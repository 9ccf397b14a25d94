import type { IncomingMessage, ServerResponse } from "node:http";
import { createContextValues } from "@connectrpc/connect";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import type { Logger } from "pino";
import { contextValuesFromRequest, kBearer, kPeerAddress, type Principal, principalName } from "../api/auth.js";
import type { InProcessApi } from "../api/in-process.js";
import type { HttpRoute } from "../api/server.js";
import { kVia } from "../api/via.js";
import { TetherError } from "../core/errors.js";
import type { CallLimit } from "./call-limit.js";
import { createTetherMcpServer } from "./mcp-server.js";

export interface McpEndpointOptions {
  /** The API's handlers and interceptors, called in-process with the caller's credential. */
  api: InProcessApi;
  /** The API's own authenticator: the same tokens and API keys, the same refusals. */
  authenticate(bearer: string): Promise<{ user: string; via: "token" | "api_key"; keyId?: string }>;
  limit: CallLimit;
  /** Largest request body, bytes (the API's TETHER_READ_MAX_BYTES). */
  readMaxBytes: number;
  log: Logger;
}

type Req = Parameters<HttpRoute["handle"]>[0];
type Res = Parameters<HttpRoute["handle"]>[1];

/** A JSON-RPC error as the whole HTTP answer (before any MCP session exists). */
function refuse(res: Res, status: number, message: string, extra: Record<string, string> = {}): void {
  const body = JSON.stringify({ jsonrpc: "2.0", error: { code: -32001, message }, id: null });
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body), ...extra });
  res.end(body);
}

/** The request body, at most `max` bytes; undefined (and a 413 sent) when larger. */
async function readBody(req: Req, res: Res, max: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) {
      refuse(res, 413, `request body larger than ${max} bytes`);
      return undefined;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/**
 * Who is calling: the bearer credential (access token or API key), checked by the API's own
 * authenticator, else nobody (401: MCP over HTTP is never anonymous). Every tool call is checked
 * again, per call, by the API's auth interceptor. A client certificate alone is not enough here:
 * a browser sends one by itself, so a page on another site could make a certificate holder's
 * browser call tools; a bearer credential is only ever sent on purpose.
 */
async function callerOf(req: Req, o: McpEndpointOptions): Promise<{ principal?: Principal; bearer: string; refusal?: string }> {
  const bearer = contextValuesFromRequest(req).get(kBearer);
  if (bearer === undefined) return { bearer: "", refusal: "an access token or API key (authorization: Bearer …) is required" };
  if (bearer === "") return { bearer, refusal: "the authorization header must be `Bearer <token or API key>`" };
  try {
    const who = await o.authenticate(bearer);
    return { principal: { kind: "user", id: who.user, via: who.via, keyId: who.keyId }, bearer };
  } catch (err) {
    if (err instanceof TetherError) return { bearer, refusal: err.message };
    throw err;
  }
}

/**
 * `/mcp` on the API port: MCP's Streamable HTTP transport, stateless (a server and transport per
 * request, JSON answers), so any replica answers any request. Tool calls run the API's handlers
 * in-process with the caller's credential, and the audit log records them with via "mcp", set
 * here rather than taken from a header.
 */
export function createMcpEndpoint(o: McpEndpointOptions) {
  return async (req: Req, res: Res): Promise<void> => {
    const caller = await callerOf(req, o);
    if (!caller.principal) {
      o.log.warn({ path: "/mcp", reason: caller.refusal }, "MCP request refused");
      return refuse(res, 401, caller.refusal ?? "unauthenticated", { "www-authenticate": 'Bearer realm="tether"' });
    }
    if (req.method !== "POST") {
      // Stateless: no session to end (DELETE) and no server-initiated messages to stream (GET),
      // which the transport spec answers with 405 rather than an SSE stream that stays silent.
      return refuse(res, 405, "this MCP endpoint is stateless: POST JSON-RPC requests", { allow: "POST" });
    }
    const principal = caller.principal;
    const address = (req.socket as { remoteAddress?: string }).remoteAddress ?? "";
    const raw = await readBody(req, res, o.readMaxBytes);
    if (raw === undefined) return;
    let body: unknown;
    try {
      body = JSON.parse(raw.toString("utf8"));
    } catch {
      return refuse(res, 400, "the body is not JSON");
    }
    const api = o.api.transport(() => {
      const values = createContextValues();
      values.set(kBearer, caller.bearer);
      values.set(kPeerAddress, address);
      values.set(kVia, "mcp");
      return values;
    });
    const name = principalName(principal);
    const server = createTetherMcpServer({
      api,
      principal: name,
      limit: o.limit,
      onCall: (e) => o.log.info(e, "MCP tool call"),
    });
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on("close", () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req as IncomingMessage, res as ServerResponse, body);
  };
}
