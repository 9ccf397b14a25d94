import { createContextKey } from "@connectrpc/connect";

/**
 * The request header a client names itself in (`tether-via: mcp`, sent by `tether mcp`). What the
 * client says, not proven: it is recorded in the audit log (`AuditEvent.via`) and nothing else
 * depends on it. The MCP endpoint on the API port sets the value itself for its own calls.
 */
export const VIA_HEADER = "tether-via";

/** The clients the audit log records by name; any other header value is recorded as "". */
const KNOWN = new Set(["mcp"]);

/** The client a call came through (`mcp`), or "" (the API called directly). */
export const kVia = createContextKey<string>("", { description: "client the call came through" });

/** The header's value if it names a known client, else "": a caller cannot write free text into the audit log. */
export function viaFromHeader(value: string | string[] | null | undefined): string {
  const v = Array.isArray(value) ? value[0] : value;
  return v !== undefined && v !== null && KNOWN.has(v.trim().toLowerCase()) ? v.trim().toLowerCase() : "";
}
