import { createHash } from "node:crypto";
import { InvalidArgumentError } from "./errors.js";

/**
 * Keyset pagination tokens: the last key of the previous page plus a digest of the query, so a
 * page stays stable while rows are added or removed, and a token reused with another filter is
 * refused instead of returning a mixed result.
 */
export function encodePageToken(lastKey: string, query: string): string {
  return Buffer.from(JSON.stringify({ k: lastKey, q: digest(query) })).toString("base64url");
}

/** Returns the last key of the previous page, or undefined for the first page. */
export function decodePageToken(token: string, query: string, field = "page_token"): string | undefined {
  if (token === "") return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    throw InvalidArgumentError.field(field, "is not a token returned by this method");
  }
  const p = parsed as { k?: unknown; q?: unknown };
  if (typeof p?.k !== "string" || typeof p.q !== "string") {
    throw InvalidArgumentError.field(field, "is not a token returned by this method");
  }
  if (p.q !== digest(query)) {
    throw InvalidArgumentError.field(field, "was issued for a different request; keep the other fields unchanged between pages");
  }
  return p.k;
}

/** AIP-158: 0 means the default; above the maximum is coerced, negative is an error. */
export function resolvePageSize(size: number, def = 50, max = 1000, field = "page_size"): number {
  if (size < 0) throw InvalidArgumentError.field(field, "must not be negative");
  if (size === 0) return def;
  return Math.min(size, max);
}

function digest(s: string): string {
  return createHash("sha256").update(s).digest("base64url").slice(0, 16);
}
