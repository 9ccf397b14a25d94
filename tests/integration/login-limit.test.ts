import net from "node:net";
import tls from "node:tls";
import { type Client, Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Command, IPv4Address, IPv4ProxyAddress, INETProtocol, Peer, TransportProtocol, V1ProxyProtocol, V2ProxyProtocol } from "proxy-protocol-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { AuthService } from "../../gen/tether/v1/auth_service_pb.js";
import { UserService } from "../../gen/tether/v1/user_service_pb.js";
import { captureLogger } from "../helpers/auth.js";
import { fakeClock } from "../helpers/fake-clock.js";
import { connectClient, startTestStack, type TestStack } from "../helpers/stack.js";

// Issue 16, point 8: the login throttle reserves before checking, backs off per name and address,
// never locks a user out of an address they signed in from, and learns the client's address from
// a trusted proxy's PROXY header (and only a trusted proxy's).
const capture = captureLogger();
const clock = fakeClock(new Date());
const PROXY = "127.0.0.2";
let s: TestStack;
beforeAll(async () => {
  s = await startTestStack(
    { TETHER_LOGIN_FREE_ATTEMPTS: "5", TETHER_LOGIN_MAX_FAILURES_PER_USER: "10", TETHER_TRUSTED_PROXIES: PROXY },
    { log: capture.log, clock },
  );
  for (const user of ["carol", "dave", "erin", "frank"])
    await connectClient(s, UserService, "grpc").createUser({ userId: user, password: `${user}-password-1` });
}, 60_000);
afterAll(async () => {
  await s?.cleanup();
});

/** An anonymous AuthService client whose connection comes from `localAddress` (any 127/8 address is ours). */
const authFrom = (localAddress: string) => authThroughProxy(localAddress, undefined);

/**
 * An AuthService client whose TCP connection (from `localAddress`) opens with `header` before
 * TLS, as HAProxy's send-proxy does; without a header, an ordinary direct client.
 */
function authThroughProxy(localAddress: string, header: Uint8Array | string | undefined): Client<typeof AuthService> {
  const createConnection = () => {
    const raw = net.connect({ host: "127.0.0.1", port: s.app.apiPort, localAddress });
    if (header !== undefined) raw.write(header);
    return tls.connect({ socket: raw, ca: s.admin.ca, servername: "localhost", ALPNProtocols: ["h2"] });
  };
  return createClient(AuthService, createGrpcTransport({ baseUrl: `https://127.0.0.1:${s.app.apiPort}`, nodeOptions: { createConnection } }));
}

const v2Header = (client: [number, number, number, number]) =>
  new V2ProxyProtocol(
    Command.PROXY,
    TransportProtocol.STREAM,
    new IPv4ProxyAddress(IPv4Address.createFrom(client), 40_000, IPv4Address.createFrom([127, 0, 0, 1]), s.app.apiPort),
  ).build();

/** The gRPC code of a login (OK when it signs in). */
async function attempt(c: Client<typeof AuthService>, user: string, password: string): Promise<Code | "ok"> {
  try {
    await c.login({ user, password });
    return "ok";
  } catch (err) {
    return ConnectError.from(err).code;
  }
}

/** The RetryInfo delay of a refused login, ms. */
async function refusedRetryMs(c: Client<typeof AuthService>, user: string, password: string): Promise<number> {
  const err = await c.login({ user, password }).then(
    () => undefined,
    (e: unknown) => ConnectError.from(e),
  );
  expect(err?.code).toBe(Code.ResourceExhausted);
  const [info] = err!.findDetails(RetryInfoSchema);
  expect(info?.retryDelay, "RESOURCE_EXHAUSTED carries google.rpc.RetryInfo").toBeDefined();
  return Number(info!.retryDelay!.seconds) * 1000 + info!.retryDelay!.nanos / 1e6;
}

/** How many times a password was really checked for `user` and found wrong (each check logs this). */
const wrongPasswordChecks = (user: string) => capture.lines().filter((l) => l.msg === "login refused" && l.user === user && l.reason === "wrong password");

describe("login throttle", () => {
  it("30 concurrent wrong passwords cost at most the limit of password checks", async () => {
    const c = authFrom("127.0.0.3");
    const codes = await Promise.all(Array.from({ length: 30 }, () => attempt(c, "carol", "not-carols-password")));
    const checked = codes.filter((x) => x === Code.Unauthenticated).length;
    expect(checked).toBeLessThanOrEqual(5);
    expect(codes.filter((x) => x === Code.ResourceExhausted)).toHaveLength(30 - checked);
    expect(wrongPasswordChecks("carol").length).toBeLessThanOrEqual(5);
  });

  it("a stranger's failures never lock the owner out of an address they signed in from", async () => {
    const home = authFrom("127.0.0.4");
    expect(await attempt(home, "dave", "dave-password-1")).toBe("ok"); // 127.0.0.4 is now known good for dave
    // Strangers on two addresses fail until refused: their own back-off, then the per-user ceiling (10).
    for (const stranger of [authFrom("127.0.0.5"), authFrom("127.0.0.6")]) {
      for (let i = 0; i < 5; i++) expect(await attempt(stranger, "dave", `guess-${i}`)).toBe(Code.Unauthenticated);
      expect(await attempt(stranger, "dave", "guess-x")).toBe(Code.ResourceExhausted);
    }
    expect(await attempt(authFrom("127.0.0.7"), "dave", "guess-y")).toBe(Code.ResourceExhausted); // ceiling reached
    // The owner, from home, with the right password: in at once.
    expect(await attempt(home, "dave", "dave-password-1")).toBe("ok");
    // A wrong password from home still counts against home only (its own back-off), not a lock.
    expect(await attempt(home, "dave", "typo")).toBe(Code.Unauthenticated);
    expect(await attempt(home, "dave", "dave-password-1")).toBe("ok");
  });

  it("the back-off grows with every further failure and says when to retry", async () => {
    const c = authFrom("127.0.0.8");
    for (let i = 0; i < 5; i++) expect(await attempt(c, "erin", `guess-${i}`)).toBe(Code.Unauthenticated);
    const delays: number[] = [];
    for (let round = 0; round < 3; round++) {
      const retryMs = await refusedRetryMs(c, "erin", "erin-password-1"); // refused unchecked, even when right
      delays.push(retryMs);
      clock.advance(retryMs);
      // After the wait one more attempt is checked (wrong here), and the next wait is longer.
      expect(await attempt(c, "erin", `late-guess-${round}`)).toBe(Code.Unauthenticated);
    }
    expect(delays[1]).toBeGreaterThan(delays[0]!);
    expect(delays[2]).toBeGreaterThan(delays[1]!);
    clock.advance(await refusedRetryMs(c, "erin", "erin-password-1"));
    expect(await attempt(c, "erin", "erin-password-1")).toBe("ok");
    // A success starts the pair afresh.
    expect(await attempt(c, "erin", "guess-after")).toBe(Code.Unauthenticated);
  });

  it("a trusted proxy's PROXY v2 header sets the client address the throttle and the log use", async () => {
    const viaProxy = authThroughProxy(PROXY, v2Header([203, 0, 113, 7]));
    for (let i = 0; i < 5; i++) expect(await attempt(viaProxy, "frank", `guess-${i}`)).toBe(Code.Unauthenticated);
    expect(await attempt(viaProxy, "frank", "guess-x")).toBe(Code.ResourceExhausted);
    const frankLines = capture.lines().filter((l) => String(l.msg).startsWith("login refused") && l.user === "frank");
    expect(frankLines.length).toBe(6);
    expect(frankLines.every((l) => l.address === "203.0.113.7")).toBe(true);
    // Another client behind the same proxy has its own back-off; so has the proxy host itself.
    expect(await attempt(authThroughProxy(PROXY, v2Header([203, 0, 113, 8])), "frank", "guess-y")).toBe(Code.Unauthenticated);
    expect(await attempt(authFrom(PROXY), "frank", "guess-z")).toBe(Code.Unauthenticated);
    // PROXY v1 (text) works too.
    const v1 = new V1ProxyProtocol(INETProtocol.TCP4, new Peer("198.51.100.9", 40_001), new Peer("127.0.0.1", s.app.apiPort)).build();
    expect(await attempt(authThroughProxy(PROXY, v1), "frank", "frank-password-1")).toBe("ok");
    expect(
      capture
        .lines()
        .filter((l) => l.msg === "login" && l.user === "frank")
        .at(-1),
    ).toMatchObject({ address: "198.51.100.9" });
  });

  it("a malformed header from the trusted proxy closes that connection, and says why", async () => {
    const raw = net.connect({ host: "127.0.0.1", port: s.app.apiPort, localAddress: PROXY });
    raw.on("error", () => {});
    raw.write("PROXY TCP4 not-an-address 127.0.0.1 1 2\r\n");
    await new Promise((resolve) => raw.once("close", resolve));
    expect(
      capture
        .lines()
        .filter((l) => l.msg === "PROXY header refused: connection closed")
        .at(-1),
    ).toMatchObject({ peer: PROXY, reason: "v1 header with a bad source address" });
  });

  it("refuses a user name with control characters before anything is stored", async () => {
    expect(await attempt(authFrom("127.0.0.10"), "fr\u0000ank", "x")).toBe(Code.InvalidArgument);
  });

  it("an untrusted peer cannot spoof its address with a PROXY header", async () => {
    const spoofed = authThroughProxy("127.0.0.9", v2Header([203, 0, 113, 66]));
    const code = await attempt(spoofed, "frank", "frank-password-1");
    expect(code).not.toBe("ok"); // its header went to the TLS handshake, which failed
    expect(capture.text()).not.toContain("203.0.113.66");
    expect(await attempt(authFrom("127.0.0.9"), "frank", "frank-password-1")).toBe("ok"); // the server is still up
  });
});
