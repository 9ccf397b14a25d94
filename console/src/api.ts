import type { DescService } from "@bufbuild/protobuf";
import { type Client, Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { AuthService } from "../../gen/tether/v1/auth_service_pb.js";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { RuleService } from "../../gen/tether/v1/rule_service_pb.js";
import { CertificateService } from "../../gen/tether/v1/certificate_service_pb.js";
import { TaskService } from "../../gen/tether/v1/task_service_pb.js";
import { TelemetryService } from "../../gen/tether/v1/telemetry_service_pb.js";
import { UserService } from "../../gen/tether/v1/user_service_pb.js";
import { session } from "./auth/session.js";

/**
 * AuthService calls ask for a cookie session (the refresh token as an HttpOnly cookie, never in
 * the body). Every other call carries the bearer token when signed in with a password; on
 * UNAUTHENTICATED the token is refreshed once from the cookie and a unary call is retried (a
 * stream fails, and useStream reopens it with the new token); if the refresh fails the session
 * ends. With a client certificate there is no token and this only passes calls through.
 */
const credentials: Interceptor = (next) => async (req) => {
  if (req.service.typeName === AuthService.typeName) {
    req.header.set("x-tether-session", "cookie");
    return next(req);
  }
  const token = session.accessToken;
  if (token) req.header.set("authorization", `Bearer ${token}`);
  try {
    const res = await next(req);
    // A stream's refusal arrives while reading it (Connect ends the stream with the error).
    return res.stream && token ? { ...res, message: renewOnRefusal(res.message, token) } : res;
  } catch (err) {
    if (!token || ConnectError.from(err).code !== Code.Unauthenticated) throw err;
    // Another call may have refreshed meanwhile; otherwise refresh now (one call shared by all).
    const fresh = session.accessToken !== token || (await session.refresh());
    if (!fresh) {
      session.expired();
      throw err;
    }
    if (req.stream) throw err;
    req.header.set("authorization", `Bearer ${session.accessToken}`);
    return next(req);
  }
};

/** Passes a stream's messages through; on UNAUTHENTICATED refreshes the token (or ends the session) before rethrowing. */
async function* renewOnRefusal<T>(messages: AsyncIterable<T>, token: string): AsyncIterable<T> {
  try {
    yield* messages;
  } catch (err) {
    if (ConnectError.from(err).code === Code.Unauthenticated && session.accessToken === token && !(await session.refresh())) session.expired();
    throw err;
  }
}

/**
 * The public API, from this page's own origin (Tether serves the console on its API port), in the
 * Connect protocol with binary protobuf: the same contract every other client uses. fetch sends
 * this origin's cookies (`credentials: "same-origin"`), which is how the refresh cookie reaches
 * the AuthService.
 */
const transport = createConnectTransport({
  baseUrl: location.origin,
  useBinaryFormat: true,
  interceptors: [credentials],
});

const client = <S extends DescService>(s: S): Client<S> => createClient(s, transport);

export const api = {
  devices: client(DeviceService),
  tasks: client(TaskService),
  telemetry: client(TelemetryService),
  rules: client(RuleService),
  certificates: client(CertificateService),
  users: client(UserService),
};

session.use(client(AuthService));
