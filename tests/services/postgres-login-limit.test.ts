import net from "node:net";
import tls from "node:tls";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthService } from "../../gen/tether/v1/auth_service_pb.js";
import { UserService } from "../../gen/tether/v1/user_service_pb.js";
import { anonymousClient } from "../helpers/auth.js";
import { freshDatabase } from "../helpers/postgres.js";
import { connectClient, startTestStack, type TestStack } from "../helpers/stack.js";

// The login throttle lives in PostgreSQL (migration 13) so that replicas share one budget.
let a: TestStack;
let b: TestStack;
let db: Awaited<ReturnType<typeof freshDatabase>>;
const env = { TETHER_LOGIN_FREE_ATTEMPTS: "5", TETHER_LOGIN_MAX_FAILURES_PER_USER: "10" };
beforeAll(async () => {
  db = await freshDatabase("tether_login_limit");
  a = await startTestStack({ DATABASE_URL: db.url, ...env });
  b = await startTestStack({ DATABASE_URL: db.url, ...env });
  await connectClient(a, UserService, "grpc").createUser({ userId: "quinn", password: "quinn-password-1" });
}, 60_000);
afterAll(async () => {
  await b?.cleanup();
  await a?.cleanup();
  await db?.drop();
});

/** An anonymous AuthService client of `s` whose connection comes from `localAddress`. */
function authFrom(s: TestStack, localAddress: string) {
  const createConnection = () =>
    tls.connect({
      socket: net.connect({ host: "127.0.0.1", port: s.app.apiPort, localAddress }),
      ca: s.admin.ca,
      servername: "localhost",
      ALPNProtocols: ["h2"],
    });
  return createClient(AuthService, createGrpcTransport({ baseUrl: `https://127.0.0.1:${s.app.apiPort}`, nodeOptions: { createConnection } }));
}

const code = (p: Promise<unknown>) =>
  p.then(
    () => "ok" as const,
    (e: unknown) => ConnectError.from(e).code,
  );

describe("login throttle on a real PostgreSQL, two replicas", () => {
  it("30 wrong passwords at once, split over both replicas, cost at most the limit of checks", async () => {
    const clients = [anonymousClient(a, AuthService), anonymousClient(b, AuthService)];
    const codes = await Promise.all(Array.from({ length: 30 }, (_, i) => code(clients[i % 2]!.login({ user: "quinn", password: `guess-${i}` }))));
    expect(codes.filter((c) => c === Code.Unauthenticated).length).toBeLessThanOrEqual(5);
    expect(codes.filter((c) => c !== Code.Unauthenticated).every((c) => c === Code.ResourceExhausted)).toBe(true);
  });

  it("an address known good on one replica is honoured by the other, past the per-user ceiling", async () => {
    const home = authFrom(a, "127.0.0.20");
    expect(await code(home.login({ user: "quinn", password: "quinn-password-1" }))).toBe("ok");
    // Strangers on the other replica fill quinn's per-user ceiling (10, counting the guesses above).
    for (const address of ["127.0.0.21", "127.0.0.22"]) {
      const stranger = authFrom(b, address);
      for (let i = 0; i < 5; i++)
        expect([Code.Unauthenticated, Code.ResourceExhausted]).toContain(await code(stranger.login({ user: "quinn", password: `guess-${i}` })));
    }
    expect(await code(authFrom(b, "127.0.0.23").login({ user: "quinn", password: "quinn-password-1" }))).toBe(Code.ResourceExhausted);
    expect(await code(authFrom(b, "127.0.0.20").login({ user: "quinn", password: "quinn-password-1" }))).toBe("ok");
  });
});
