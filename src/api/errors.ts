import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Interceptor } from "@connectrpc/connect";
import type { Logger } from "pino";
import { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { InvalidArgumentError, ResourceExhaustedError, TetherError } from "../core/errors.js";
import { kRequestId } from "./observe.js";

const CODES: Record<TetherError["code"], Code> = {
  INVALID_ARGUMENT: Code.InvalidArgument,
  NOT_FOUND: Code.NotFound,
  ALREADY_EXISTS: Code.AlreadyExists,
  FAILED_PRECONDITION: Code.FailedPrecondition,
  ABORTED: Code.Aborted,
  RESOURCE_EXHAUSTED: Code.ResourceExhausted,
  PERMISSION_DENIED: Code.PermissionDenied,
  UNAUTHENTICATED: Code.Unauthenticated,
  DEADLINE_EXCEEDED: Code.DeadlineExceeded,
  UNAVAILABLE: Code.Unavailable,
};

/**
 * Maps any error to the status a client sees. Core errors keep their message and gain
 * `google.rpc.BadRequest` field violations (or `google.rpc.RetryInfo` when a retry time is known)
 * and a `google.rpc.ErrorInfo` reason; anything else is logged and becomes a bare INTERNAL, so
 * stack traces and SQL never reach a client.
 */
export function toConnectError(err: unknown, log: Logger, procedure: string): ConnectError {
  if (err instanceof ConnectError) return err;
  if (err instanceof TetherError) {
    const details = [];
    if (err instanceof InvalidArgumentError) {
      details.push({
        desc: BadRequestSchema,
        value: create(BadRequestSchema, {
          fieldViolations: err.violations.map((v) => ({ field: v.field, description: v.description })),
        }),
      });
    }
    if (err instanceof ResourceExhaustedError && err.retryDelayMs !== undefined) {
      const ms = Math.max(0, Math.ceil(err.retryDelayMs));
      details.push({
        desc: RetryInfoSchema,
        value: create(RetryInfoSchema, { retryDelay: { seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1_000_000 } }),
      });
    }
    details.push({ desc: ErrorInfoSchema, value: create(ErrorInfoSchema, { reason: err.code, domain: "tether.dev" }) });
    return new ConnectError(err.message, CODES[err.code], undefined, details, err);
  }
  log.error({ err, procedure }, "unhandled error in RPC handler");
  return new ConnectError("internal error", Code.Internal, undefined, undefined, err);
}

/** An interceptor applying `toConnectError` to unary results and to every streamed message. */
export function errorMappingInterceptor(log: Logger): Interceptor {
  return (next) => async (req) => {
    const procedure = req.url;
    // Only failing calls need the child logger that carries the request id.
    const callLog = () => log.child({ requestId: req.contextValues.get(kRequestId) || undefined });
    try {
      const res = await next(req);
      if (!res.stream) return res;
      const inner = res.message;
      return {
        ...res,
        message: (async function* () {
          try {
            yield* inner;
          } catch (err) {
            // A client that went away mid-stream (navigated, reset the stream) is not a server fault.
            if (req.signal.aborted || (err as { code?: unknown } | null)?.code === "ERR_HTTP2_INVALID_STREAM") {
              throw new ConnectError("the client closed the stream", Code.Canceled, undefined, undefined, err);
            }
            throw toConnectError(err, callLog(), procedure);
          }
        })(),
      };
    } catch (err) {
      throw toConnectError(err, callLog(), procedure);
    }
  };
}
