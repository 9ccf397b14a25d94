import { type DescMessage, type DescMethodUnary, fromJson, type JsonValue, type MessageShape, toJson } from "@bufbuild/protobuf";
import type { Transport } from "@connectrpc/connect";
import type { JsonSchema } from "./json-schema.js";

/** What an MCP client sees of a tool (the `tools/list` entry). */
export interface ToolInfo {
  name: string;
  /** One line an agent can act on. */
  description: string;
  inputSchema: JsonSchema & { type: "object" };
  annotations: { title?: string; readOnlyHint?: boolean; destructiveHint?: boolean; idempotentHint?: boolean; openWorldHint?: boolean };
}

/** The arguments of a tool call, as the client sent them. */
export type Args = Record<string, unknown>;

/** A tool: its listing, and what a call does through the API. */
export interface ToolDef extends ToolInfo {
  /**
   * Whether a call with these arguments must carry `confirm: true` (a destructive one). The
   * server refuses it otherwise, so an agent checks with its user first.
   */
  needsConfirm?: (args: Args) => boolean;
  run(api: Transport, args: Args, signal: AbortSignal): Promise<unknown>;
}

/** A tool call refused before it reached the API (a missing `confirm`, bad arguments). */
export class ToolRefusal extends Error {
  override name = "ToolRefusal";
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Longest wait of any call: CreateTask waits at most 5 min for its device. */
const CALL_TIMEOUT_MS = 330_000;

/** Parses a request from protobuf JSON, naming the argument that does not fit. */
export function requestFrom<I extends DescMessage>(schema: I, json: Args): MessageShape<I> {
  try {
    return fromJson(schema, json as JsonValue);
  } catch (err) {
    // protobuf-es says "cannot decode field tether.v1.QueryTelemetryRequest.parent from JSON:
    // expected string, got 3": keep the field and the reason, in the arguments' own terms.
    const m = (err instanceof Error ? err.message : String(err)).replace(/^\[\w+\] /, "");
    const field = /^cannot decode field [\w.]*?\.(\w+) from JSON: (.*)$/s.exec(m);
    const message = /^cannot decode message ([\w.]+) from JSON: (.*)$/s.exec(m);
    const request = message && /^tether\.v1\.\w+Request$/.test(message[1]!);
    const text = field
      ? `${field[1]}: ${field[2]}`
      : message
        ? request
          ? `${message[2]} in the arguments`
          : `not a valid ${message[1]!.split(".").at(-1)}: ${message[2]}`
        : m;
    throw new ToolRefusal("INVALID_ARGUMENT", text);
  }
}

/** Calls one unary method of the API with the caller's transport; the answer as compact protobuf JSON. */
export async function call<I extends DescMessage, O extends DescMessage>(
  api: Transport,
  method: DescMethodUnary<I, O>,
  input: MessageShape<I>,
  signal: AbortSignal,
): Promise<JsonValue> {
  const res = await api.unary(method, signal, CALL_TIMEOUT_MS, undefined, input);
  return toJson(method.output, res.message, { alwaysEmitImplicit: false });
}

/** The arguments without those only the MCP layer reads. */
export function without(args: Args, ...keys: string[]): Args {
  const out: Args = {};
  for (const [k, v] of Object.entries(args)) if (!keys.includes(k)) out[k] = v;
  return out;
}

/** An argument every destructive tool takes. */
export const CONFIRM_ARG: JsonSchema = {
  type: "boolean",
  description: "true only after the user explicitly agreed to this destructive action",
};

/**
 * A tool that is one API method: the arguments are the request's protobuf JSON (the picked
 * fields), and the schema is walked from the request message.
 */
export function methodTool<I extends DescMessage, O extends DescMessage>(method: DescMethodUnary<I, O>, t: Omit<ToolDef, "run">): ToolDef {
  return {
    ...t,
    // `confirm` is the MCP layer's, not the request's.
    run: (api, args, signal) => call(api, method, requestFrom(method.input, without(args, "confirm")), signal),
  };
}
