/**
 * grpc.health.v1.Health for the connect-node server.
 *
 * Why a hand-written service: connect-es has no built-in health service, but load balancers,
 * Kubernetes `grpc` probes, `grpc-health-probe` and service meshes all speak this exact protocol.
 * The semantics follow https://github.com/grpc/grpc/blob/master/doc/health-checking.md:
 * - `Check` of a service nobody registered answers NOT_FOUND (a status, not SERVICE_UNKNOWN), so a
 *   probe with a typo fails loudly instead of looking "unknown but fine".
 * - `Watch` of an unregistered service answers SERVICE_UNKNOWN and keeps the stream open, because
 *   the service may register later; it sends a message only when the status actually changes.
 * - The empty service name "" is the server as a whole.
 *
 * @module
 */
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { ConnectRouter, HandlerContext } from "@connectrpc/connect";
import {
  Health,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as ServingStatus,
  HealthListResponseSchema,
} from "../../gen/grpc/health/v1/health_pb.js";
import type { HealthCheckRequest, HealthCheckResponse, HealthListResponse } from "../../gen/grpc/health/v1/health_pb.js";

/** The statuses the application may set; UNKNOWN and SERVICE_UNKNOWN are the protocol's own. */
export type SettableServingStatus = "SERVING" | "NOT_SERVING";

/** Handle returned by {@link createHealthService}. */
export interface HealthService {
  /** Registers grpc.health.v1.Health on a connect router (pass to `connectNodeAdapter({ routes })`). */
  routes(router: ConnectRouter): void;
  /**
   * Sets the status of one service ("" is the whole server) and wakes every Watch on it.
   * Ignored after {@link HealthService.shutdown}: a draining server must not flip back to
   * SERVING because some component reports late.
   */
  setStatus(service: string, status: SettableServingStatus): void;
  /**
   * Marks every service NOT_SERVING, lets open Watch streams deliver that, then ends them.
   * Call it first when draining, so load balancers stop routing before connections close;
   * without ending the streams, `http2Server.close()` would wait for them forever.
   */
  shutdown(): void;
}

/**
 * Creates the health service. The overall server ("") starts as SERVING: the service is
 * normally mounted once the server is ready to take calls; use `setStatus("", "NOT_SERVING")`
 * before mounting if readiness comes later.
 */
export function createHealthService(): HealthService {
  const statuses = new Map<string, ServingStatus>([["", ServingStatus.SERVING]]);
  // One wake-up callback per open Watch; a change wakes them all and each re-reads its own
  // service. Broadcasting is simpler than per-service lists and there are few watchers.
  const watchers = new Set<() => void>();
  let closed = false;

  const notifyAll = (): void => {
    for (const wake of watchers) wake();
  };

  function check(req: HealthCheckRequest): HealthCheckResponse {
    const status = statuses.get(req.service);
    if (status === undefined) {
      throw new ConnectError(`unknown service "${req.service}"`, Code.NotFound);
    }
    return create(HealthCheckResponseSchema, { status });
  }

  async function* watch(req: HealthCheckRequest, ctx: HandlerContext): AsyncGenerator<HealthCheckResponse> {
    let pending = false; // a change happened since we last looked
    let resume: (() => void) | undefined;
    const wake = (): void => {
      pending = true;
      resume?.();
    };
    watchers.add(wake);
    // The abort listener matters: when the client cancels while we wait for a change, the
    // generator sits in an await, and connect can only finish it once that await settles.
    ctx.signal.addEventListener("abort", wake);
    try {
      let sent: ServingStatus | undefined;
      for (;;) {
        if (ctx.signal.aborted) return;
        const current = statuses.get(req.service) ?? ServingStatus.SERVICE_UNKNOWN;
        if (current !== sent) {
          sent = current;
          yield create(HealthCheckResponseSchema, { status: current });
        }
        if (closed || ctx.signal.aborted) return;
        if (!pending) {
          await new Promise<void>((resolve) => (resume = resolve));
        }
        resume = undefined;
        pending = false;
      }
    } finally {
      watchers.delete(wake);
      ctx.signal.removeEventListener("abort", wake);
    }
  }

  function list(): HealthListResponse {
    const out = create(HealthListResponseSchema);
    for (const [service, status] of statuses) {
      out.statuses[service] = create(HealthCheckResponseSchema, { status });
    }
    return out;
  }

  return {
    routes(router) {
      router.service(Health, { check, watch, list });
    },
    setStatus(service, status) {
      if (closed) return;
      const next = status === "SERVING" ? ServingStatus.SERVING : ServingStatus.NOT_SERVING;
      if (statuses.get(service) === next) return;
      statuses.set(service, next);
      notifyAll();
    },
    shutdown() {
      if (closed) return;
      closed = true;
      for (const service of statuses.keys()) statuses.set(service, ServingStatus.NOT_SERVING);
      notifyAll();
    },
  };
}
