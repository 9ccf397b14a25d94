import type { Transport } from "@connectrpc/connect";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import {
  CallToolRequestSchema,
  type CallToolResult,
  ErrorCode,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  McpError,
  ReadResourceRequestSchema,
} from "@modelcontextprotocol/sdk/types.js";
import type { CallLimit } from "./call-limit.js";
import { listResources, RESOURCE_TEMPLATES, readResource } from "./resources.js";
import { errorText } from "./tool-errors.js";
import { ToolRefusal } from "./tool.js";
import { TOOLS } from "./tools.js";

export interface TetherMcpOptions {
  /** The API as the caller: every tool is a call of Tether's public API with the caller's own credential. */
  api: Transport;
  /** Whose budget the calls take from (the principal's resource name). */
  principal: string;
  limit: CallLimit;
  /** Told of each tool call's outcome (the API port logs them; `tether mcp` does not). */
  onCall?: (e: { tool: string; principal: string; outcome: string }) => void;
}

/** What `initialize` reports as the server's version: the package's (package.json). */
const VERSION = "0.1.0";

const INSTRUCTIONS = `Tether is an IoT control plane. Every call acts with the rights of the user whose credential this server holds.
Find devices with list_devices, learn what a device accepts with describe_product, command it with create_task (it waits for the result).
Destructive tools (delete_device, cancel_job, create_job with a selector) need confirm: true: ask the user first.`;

/** Compact JSON: results go to a model's context, where whitespace costs. */
const compact = (v: unknown) => JSON.stringify(v);
/**
 * Largest result text, characters. A page of 1,000 devices or 10,000 points would flood an
 * agent's context; it gets a refusal saying how to ask for less instead of a truncated JSON.
 */
const MAX_RESULT_CHARS = 200_000;

/**
 * The MCP server of one client (a stdio session, or one HTTP request): tools and resources over
 * the API. A refusal (rights, validation, a missing confirm, the rate limit) is a tool error whose
 * text starts with the gRPC code, never a protocol error, so the agent reads it and can act.
 */
export function createTetherMcpServer(o: TetherMcpOptions): Server {
  const server = new Server({ name: "tether", version: VERSION }, { capabilities: { tools: {}, resources: {} }, instructions: INSTRUCTIONS });
  const tools = new Map(TOOLS.map((t) => [t.name, t]));
  const spend = () => {
    const wait = o.limit.take(o.principal);
    if (wait !== undefined) throw new ToolRefusal("RESOURCE_EXHAUSTED", `more than the allowed MCP calls a minute for ${o.principal}; retry after ${wait}s`);
  };

  server.setRequestHandler(ListToolsRequestSchema, () => ({
    tools: TOOLS.map(({ name, description, inputSchema, annotations }) => ({ name, description, inputSchema, annotations })),
  }));

  server.setRequestHandler(CallToolRequestSchema, async (req, extra): Promise<CallToolResult> => {
    const tool = tools.get(req.params.name);
    if (!tool) throw new McpError(ErrorCode.InvalidParams, `unknown tool ${req.params.name}`);
    const args = req.params.arguments ?? {};
    const report = (outcome: string) => o.onCall?.({ tool: tool.name, principal: o.principal, outcome });
    try {
      spend();
      if (tool.needsConfirm?.(args) && args.confirm !== true) {
        throw new ToolRefusal(
          "FAILED_PRECONDITION",
          `${tool.name} is destructive: describe what it will do to the user, and call it again with confirm: true only once they agree`,
        );
      }
      const text = compact(await tool.run(o.api, args, extra.signal));
      if (text.length > MAX_RESULT_CHARS) {
        throw new ToolRefusal(
          "RESOURCE_EXHAUSTED",
          `the result is ${Math.round(text.length / 1000)} kB, more than ${MAX_RESULT_CHARS / 1000} kB: ask for less (a smaller page_size, a filter, fewer metrics, a bucket_width)`,
        );
      }
      report("OK");
      return { content: [{ type: "text", text }] };
    } catch (err) {
      const text = errorText(err);
      report(text.slice(0, text.indexOf(":")));
      return { isError: true, content: [{ type: "text", text }] };
    }
  });

  server.setRequestHandler(ListResourceTemplatesRequestSchema, () => ({ resourceTemplates: RESOURCE_TEMPLATES }));

  // Resource reads are API calls too: the same budget, and refusals as protocol errors (resources have no error result).
  const asMcpError = (err: unknown): never => {
    throw new McpError(ErrorCode.InvalidRequest, errorText(err));
  };
  server.setRequestHandler(ListResourcesRequestSchema, async (_req, extra) => {
    try {
      spend();
      return { resources: await listResources(o.api, extra.signal) };
    } catch (err) {
      return asMcpError(err);
    }
  });
  server.setRequestHandler(ReadResourceRequestSchema, async (req, extra) => {
    try {
      spend();
      const value = await readResource(o.api, req.params.uri, extra.signal);
      return { contents: [{ uri: req.params.uri, mimeType: "application/json", text: compact(value) }] };
    } catch (err) {
      return asMcpError(err);
    }
  });
  return server;
}
