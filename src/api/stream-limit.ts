import type { Interceptor } from "@connectrpc/connect";
import type { Logger } from "pino";
import { ResourceExhaustedError } from "../core/errors.js";
import type { Counters } from "../core/ports/index.js";
import { kPeerAddress, kPrincipal } from "./auth.js";

export interface StreamLimit {
  /** Goes after the auth interceptor: the cap is per verified principal. */
  interceptor: Interceptor;
  /** Streaming calls open now, all principals (the `tether_api_streams_open` gauge). */
  open(): number;
}

/**
 * Caps the streaming calls (watches, telemetry streams) one principal has open at once. A watch
 * holds a feed subscription and a response stream for as long as the client likes, so without a
 * cap one user (or one stolen token) could open thousands on a single connection and exhaust the
 * server; HTTP/2's `maxConcurrentStreams` bounds one connection, this bounds every connection and
 * token of a principal together. A slot is taken before the handler runs and given back exactly
 * once when the stream ends, fails or the client goes away (the call's signal aborts), whichever
 * comes first. Refusals are RESOURCE_EXHAUSTED and counted (`tether_api_streams_refused_total`).
 */
export function streamLimitInterceptor(opts: { maxPerPrincipal: number; counters: Counters; log: Logger }): StreamLimit {
  const openBy = new Map<string, number>();
  let total = 0;
  const interceptor: Interceptor = (next) => async (req) => {
    if (req.method.methodKind === "unary") return next(req);
    const principal = req.contextValues.get(kPrincipal);
    // Only public streams (grpc.health.v1.Health/Watch) are reached without credentials: those
    // are capped per client address, so one anonymous caller cannot take every other's slots.
    const key = principal ? `${principal.kind}:${principal.id}` : `anonymous@${req.contextValues.get(kPeerAddress)}`;
    const held = openBy.get(key) ?? 0;
    if (held >= opts.maxPerPrincipal) {
      opts.counters.inc("tether_api_streams_refused_total", { kind: principal?.kind ?? "anonymous" });
      opts.log.warn({ principal: key, open: held, method: req.method.name }, "streaming call refused: too many open streams");
      const who = principal ? `${principal.kind} ${principal.id}` : "this address";
      throw new ResourceExhaustedError(
        `too many open streams: ${who} already has ${held} open (limit ${opts.maxPerPrincipal}); end one before opening another`,
      );
    }
    openBy.set(key, held + 1);
    total++;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      req.signal.removeEventListener("abort", release);
      total--;
      const n = (openBy.get(key) ?? 1) - 1;
      if (n <= 0) openBy.delete(key);
      else openBy.set(key, n);
    };
    // The client resetting the stream or dropping the connection aborts the signal even when the
    // handler is parked waiting for the next event and the iterator below is never resumed.
    req.signal.addEventListener("abort", release, { once: true });
    try {
      const res = await next(req);
      if (!res.stream) {
        release();
        return res;
      }
      const inner = res.message;
      return {
        ...res,
        message: (async function* () {
          try {
            yield* inner;
          } finally {
            release();
          }
        })(),
      };
    } catch (err) {
      release();
      throw err;
    }
  };
  return { interceptor, open: () => total };
}
