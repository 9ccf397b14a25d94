import type { Interceptor } from "@connectrpc/connect";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { type ClientOptions, cliTransport, resolveAddress } from "../cli/client.js";
import { loadSession } from "../cli/credentials.js";
import { VIA_HEADER } from "../api/via.js";
import { createCallLimit, MCP_RATE_DEFAULT, MCP_RATE_ENV, MCP_RATE_MAX } from "./call-limit.js";
import { createTetherMcpServer } from "./mcp-server.js";

/** `TETHER_MCP_RATE_PER_MIN`, bounded as config.ts bounds it for the server. */
function ratePerMinute(env: NodeJS.ProcessEnv): number {
  const raw = env[MCP_RATE_ENV]?.trim();
  if (!raw) return MCP_RATE_DEFAULT;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > MCP_RATE_MAX) throw new Error(`${MCP_RATE_ENV} must be a whole number from 0 to ${MCP_RATE_MAX}, not "${raw}"`);
  return n;
}

/** Who the calls are made as, for the rate-limit message (the server knows for sure). */
function callerLabel(opts: ClientOptions): string {
  if (process.env.TETHER_API_KEY) return "this API key";
  const session = loadSession(resolveAddress(opts));
  return session ? `users/${session.user}` : "this certificate";
}

/**
 * Serves MCP on stdin/stdout until stdin closes. stdout carries only MCP messages: nothing here
 * logs to it (errors go to stderr). Every call goes to the running Tether over gRPC with the
 * CLI's credential and `tether-via: mcp`, so the server checks rights and audits as for any call.
 */
export async function serveMcpOverStdio(opts: ClientOptions): Promise<void> {
  const via: Interceptor = (next) => (req) => {
    req.header.set(VIA_HEADER, "mcp");
    return next(req);
  };
  const api = cliTransport(opts, [via]);
  const server = createTetherMcpServer({
    api,
    principal: callerLabel(opts),
    limit: createCallLimit(ratePerMinute(process.env)),
  });
  const transport = new StdioServerTransport();
  const closed = new Promise<void>((resolve) => {
    transport.onclose = resolve;
    process.stdin.once("end", resolve);
  });
  server.onerror = (err) => process.stderr.write(`tether mcp: ${err.message}\n`);
  await server.connect(transport);
  process.stderr.write(`tether mcp: serving ${resolveAddress(opts)} on stdio\n`);
  await closed;
  await server.close();
}
