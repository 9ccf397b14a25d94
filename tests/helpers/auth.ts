import { Writable } from "node:stream";
import type { DescService } from "@bufbuild/protobuf";
import { type Client, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { AuthService } from "../../gen/tether/v1/auth_service_pb.js";
import { UserService } from "../../gen/tether/v1/user_service_pb.js";
import { createLogger, type Logger } from "../../src/log.js";
import { connectClient, type TestStack } from "./stack.js";

/** A client that authenticates with `authorization: Bearer <token>` only (no client certificate). */
export function bearerClient<S extends DescService>(s: TestStack, service: S, token: string, protocol: "grpc" | "connect" = "grpc"): Client<S> {
  const bearer: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
  const nodeOptions = { ca: s.admin.ca };
  const transport =
    protocol === "grpc"
      ? createGrpcTransport({ baseUrl: s.baseUrl, nodeOptions, interceptors: [bearer] })
      : createConnectTransport({ baseUrl: s.baseUrl, httpVersion: "1.1", nodeOptions, interceptors: [bearer] });
  return createClient(service, transport);
}

/** An unauthenticated client (server CA only), e.g. for Login. */
export function anonymousClient<S extends DescService>(s: TestStack, service: S): Client<S> {
  return connectClient(s, service, "grpc", { ca: s.admin.ca });
}

/** Creates a user (as the admin certificate) and signs them in; returns their access token. */
export async function userToken(s: TestStack, user: string, password = `pw-${user}-123456`): Promise<string> {
  await connectClient(s, UserService, "grpc").createUser({ userId: user, password });
  const res = await anonymousClient(s, AuthService).login({ user, password });
  return res.accessToken;
}

/** A logger writing JSON lines into memory at debug level, to assert on what was (not) logged. */
export function captureLogger(): { log: Logger; text(): string; lines(): Array<Record<string, unknown>> } {
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
  const log = createLogger("debug", sink);
  return {
    log,
    text: () => chunks.join(""),
    lines: () =>
      chunks
        .join("")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}
