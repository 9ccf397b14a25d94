import { randomUUID } from "node:crypto";
import { Code, ConnectError, createContextKey, type Interceptor } from "@connectrpc/connect";
import type { Logger } from "pino";
import { DeviceGatewayService } from "../../gen/tether/device/v1/gateway_service_pb.js";
import { TaskService } from "../../gen/tether/v1/task_service_pb.js";

/** The call's request id (from `x-request-id`, or generated); handlers and logs read it from here. */
export const kRequestId = createContextKey<string>("", { description: "request id" });

/** Header carrying the request id both ways. */
export const REQUEST_ID_HEADER = "x-request-id";
/** Accept a caller's id only if it is short and printable: it ends up in logs. */
const VALID_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Where finished calls are reported (the Prometheus histogram). */
export interface RpcObserver {
  observeRpc(service: string, method: string, code: string, seconds: number): void;
  rpcStarted(): () => void;
}

/**
 * The outermost interceptor: gives every call a request id (the caller's `x-request-id`, or a
 * new UUID), returns it as a response header (and trailer on errors), records duration and code
 * for metrics, and logs with the id the calls that fail on the server's side or take longer than
 * `slowCallMs`. Client errors (NOT_FOUND, INVALID_ARGUMENT, ...) are normal traffic, not logged;
 * nor is the length of a call that is long by design (a stream, a wait, a long poll: see
 * `waitsByDesign`), or every `--wait` would be a warning.
 */
export function observeInterceptor(opts: { log: Logger; observer?: RpcObserver; slowCallMs: number; now?: () => number }): Interceptor {
  const now = opts.now ?? (() => performance.now());
  return (next) => async (req) => {
    const given = req.header.get(REQUEST_ID_HEADER);
    const requestId = given && VALID_ID.test(given) ? given : randomUUID();
    req.contextValues.set(kRequestId, requestId);
    const service = req.service.typeName;
    const method = req.method.name;
    const started = now();
    const done = opts.observer?.rpcStarted();
    let finished = false;
    const finish = (err?: unknown) => {
      if (finished) return;
      finished = true;
      done?.();
      const seconds = (now() - started) / 1000;
      const code = err === undefined ? "ok" : codeName(ConnectError.from(err).code);
      opts.observer?.observeRpc(service, method, code, seconds);
      const fields = { requestId, service, method, code, ms: Math.round(seconds * 1000) };
      if (err !== undefined && SERVER_SIDE.has(ConnectError.from(err).code)) opts.log.error({ ...fields, err: (err as Error).message }, "call failed");
      else if (seconds * 1000 > opts.slowCallMs && !waitsByDesign(req)) opts.log.warn(fields, "slow call");
    };
    try {
      const res = await next(req);
      res.header.set(REQUEST_ID_HEADER, requestId);
      if (!res.stream) {
        finish();
        return res;
      }
      const inner = res.message;
      return {
        ...res,
        message: (async function* () {
          try {
            yield* inner;
            finish();
          } catch (err) {
            finish(err);
            throw err;
          } finally {
            finish(new ConnectError("canceled", Code.Canceled)); // the client went away
          }
        })(),
      };
    } catch (err) {
      finish(err);
      if (err instanceof ConnectError) err.metadata.set(REQUEST_ID_HEADER, requestId);
      throw err;
    }
  };
}

/**
 * Unary calls that may wait as long as the caller asked, keyed `service/method`: their length is
 * the request's, not the server's. Only the waiting form is exempt; the same method without a
 * wait is an ordinary call, and slow when slow.
 */
const WAITING_UNARY: Record<string, (message: Record<string, unknown>) => boolean> = {
  // CreateTask with `wait_for`: returns when the device acknowledged or finished (up to wait_timeout).
  [`${TaskService.typeName}/${TaskService.method.createTask.name}`]: (m) => (m.waitFor ?? 0) !== 0,
  // The HTTP gateway's long poll: with `listen_duration` it waits for downlink to arrive.
  [`${DeviceGatewayService.typeName}/${DeviceGatewayService.method.pollDownlink.name}`]: (m) => m.listenDuration !== undefined,
};

/** Whether a call's length is by design: every stream (they live as long as the client wants), and the waiting unary calls. */
function waitsByDesign(req: { method: { methodKind: string; name: string }; service: { typeName: string }; stream: boolean; message?: unknown }): boolean {
  if (req.method.methodKind !== "unary") return true;
  const waits = WAITING_UNARY[`${req.service.typeName}/${req.method.name}`];
  return waits !== undefined && !req.stream && waits(req.message as Record<string, unknown>);
}

/** Codes that mean the server (or a dependency) failed, not the caller. */
const SERVER_SIDE = new Set([Code.Internal, Code.Unknown, Code.DataLoss, Code.Unavailable, Code.Unimplemented]);

/** `Code.NotFound` → `not_found`, matching the names in connect's wire format. */
function codeName(code: Code): string {
  return Code[code]!.replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}
