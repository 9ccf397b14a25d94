import { createRateLimiter } from "../core/rate-limit.js";

/** Per-principal budget of MCP calls (tools and resource reads). */
export interface CallLimit {
  /** Takes one call of `principal`'s budget; the seconds to wait when it is spent, else undefined. */
  take(principal: string): number | undefined;
}

/**
 * A token bucket per principal: `perMinute` calls a minute sustained, a minute's worth at once
 * after a quiet spell (an agent's bursts of reads). 0 disables it. Per process: on the API port
 * per replica, for `tether mcp` its own (one principal's) budget.
 */
export function createCallLimit(perMinute: number, now: () => number = Date.now): CallLimit {
  const buckets = createRateLimiter({ ratePerS: perMinute / 60, burst: Math.max(1, perMinute), now });
  // One token comes back every 60/perMinute seconds.
  const retryAfterS = perMinute > 0 ? Math.max(1, Math.ceil(60 / perMinute)) : 0;
  return { take: (principal) => (buckets.take(principal) ? undefined : retryAfterS) };
}

/** The env var both `tether serve` (config.ts) and `tether mcp` read. */
export const MCP_RATE_ENV = "TETHER_MCP_RATE_PER_MIN";
export const MCP_RATE_DEFAULT = 120;
export const MCP_RATE_MAX = 100_000;
