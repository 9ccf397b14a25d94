import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { ToolRefusal } from "./tool.js";

/** `PermissionDenied` → `PERMISSION_DENIED`, the gRPC name an agent (and a person) recognises. */
export function codeName(code: Code): string {
  return (Code[code] ?? "UNKNOWN").replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

/**
 * The text of a failed call: `CODE: message`, then one line per field violation, so an agent can
 * fix the argument it got wrong. A failure that is not the API's is INTERNAL with no detail:
 * internals stay out of what the client sees, as on the API.
 */
export function errorText(err: unknown): string {
  if (err instanceof ToolRefusal) return `${err.code}: ${err.message}`;
  const e = ConnectError.from(err);
  if (!(err instanceof ConnectError) && e.code === Code.Unknown) return "INTERNAL: the call failed inside the MCP server";
  const lines = [`${codeName(e.code)}: ${e.rawMessage}`];
  for (const d of e.findDetails(BadRequestSchema)) for (const v of d.fieldViolations) lines.push(`- ${v.field}: ${v.description}`);
  for (const r of e.findDetails(RetryInfoSchema)) if (r.retryDelay) lines.push(`retry after ${r.retryDelay.seconds}s`);
  return lines.join("\n");
}
