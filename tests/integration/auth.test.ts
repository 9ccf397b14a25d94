import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { Code } from "@connectrpc/connect";
import { toJsonString } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthService } from "../../gen/tether/v1/auth_service_pb.js";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { UserSchema } from "../../gen/tether/v1/user_pb.js";
import { ListUsersResponseSchema, UserService } from "../../gen/tether/v1/user_service_pb.js";
import { anonymousClient, bearerClient, captureLogger } from "../helpers/auth.js";
import { fakeClock } from "../helpers/fake-clock.js";
import { connectClient, startTestStack, type TestStack } from "../helpers/stack.js";

const capture = captureLogger();
const clock = fakeClock(new Date());
/** Every secret this file handles: none may appear in the logs. */
const secrets: string[] = [];
let s: TestStack;
beforeAll(async () => {
  s = await startTestStack(
    { TETHER_LOGIN_FREE_ATTEMPTS: "3", TETHER_LOGIN_MAX_FAILURES_PER_USER: "3", TETHER_LOGIN_MAX_FAILURES_PER_ADDRESS: "8", TETHER_LOGIN_WINDOW_S: "600" },
    { log: capture.log, clock },
  );
  for (const [user, password] of [
    ["alice", "alice-password-1"],
    ["bob", "bob-password-1"],
    ["victim", "victim-password-1"],
    ["bystander", "bystander-pw-1"],
  ] as const) {
    secrets.push(password);
    await admin(UserService).createUser({ userId: user, password });
  }
}, 60_000);
afterAll(async () => {
  await s?.cleanup();
});

const admin = <S extends Parameters<typeof connectClient>[1]>(service: S) => connectClient(s, service, "grpc");
const auth = () => anonymousClient(s, AuthService);
async function login(user: string, password: string) {
  const res = await auth().login({ user, password });
  secrets.push(res.accessToken, res.refreshToken);
  return res;
}
/** Log lines of refused calls, for asserting on reasons. */
const refusals = () =>
  capture
    .lines()
    .filter((l) => l.msg === "call refused" || l.msg === "login refused" || String(l.msg).startsWith("login refused") || String(l.msg).startsWith("refresh"));
const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");

describe("login, tokens and API keys", () => {
  it("logs in with a password; the access token works as a bearer over gRPC and Connect", async () => {
    const res = await login("alice", "alice-password-1");
    expect(res.user).toBe("users/alice");
    const me = await bearerClient(s, UserService, res.accessToken).getUser({ name: "users/me" });
    expect(me).toMatchObject({ name: "users/alice", hasPassword: true, admin: false });
    await bearerClient(s, DeviceService, res.accessToken, "connect").listDevices({});
    // No password or hash in any response.
    const listed = toJsonString(ListUsersResponseSchema, await admin(UserService).listUsers({}));
    expect(listed).not.toMatch(/alice-password-1|scrypt/);
    expect(toJsonString(UserSchema, me)).not.toMatch(/alice-password-1|scrypt/);
  });

  it("refuses a wrong password and an unknown user with the same answer, logging the reason", async () => {
    secrets.push("wrong-password-1");
    const wrong = await auth()
      .login({ user: "alice", password: "wrong-password-1" })
      .catch((e: unknown) => e);
    const unknown = await auth()
      .login({ user: "nobody", password: "wrong-password-1" })
      .catch((e: unknown) => e);
    expect(wrong).toMatchObject({ code: Code.Unauthenticated, rawMessage: "wrong user name or password" });
    expect(unknown).toMatchObject({ code: Code.Unauthenticated, rawMessage: "wrong user name or password" });
    expect(refusals().map((l) => l.reason)).toEqual(expect.arrayContaining(["wrong password", "unknown user"]));
  });

  it("refuses alg=none, tampered, foreign-key, malformed and expired tokens with UNAUTHENTICATED and a logged reason", async () => {
    const { accessToken } = await login("bob", "bob-password-1");
    const [h, p, sig] = accessToken.split(".") as [string, string, string];
    const header = JSON.parse(Buffer.from(h, "base64url").toString()) as { kid: string };
    const claims = JSON.parse(Buffer.from(p, "base64url").toString()) as Record<string, unknown>;
    const foreign = await generateKeyPair("ES256", { extractable: true });
    expect((await exportJWK(foreign.publicKey)).crv).toBe("P-256");
    const forged = await new SignJWT({ ...claims, sub: "admin" }).setProtectedHeader({ alg: "ES256", kid: header.kid }).sign(foreign.privateKey);
    const cases: Array<[string, string, RegExp]> = [
      ["alg none", `${b64({ alg: "none", typ: "JWT" })}.${b64({ ...claims, sub: "admin" })}.`, /algorithm not allowed|malformed/],
      ["tampered", `${h}.${b64({ ...claims, sub: "admin" })}.${sig}`, /bad signature/],
      ["foreign key", forged, /bad signature/],
      ["garbage", "abc.def.ghi", /malformed/],
    ];
    for (const [what, token, reason] of cases) {
      const err = await bearerClient(s, DeviceService, token)
        .listDevices({})
        .catch((e: unknown) => e);
      expect(err, what).toMatchObject({ code: Code.Unauthenticated });
      expect(String((err as Error).message), what).not.toMatch(/\n\s+at /); // no stack trace
      expect(refusals().at(-1)?.reason, what).toMatch(reason);
    }
    // A header that is not `Bearer <token>`.
    const raw = await fetchStatus("Basic Ym9iOmJvYg==");
    expect(raw).toBe(401);
    // Expiry: the server's clock moves past the token's 15 minutes (+30 s tolerance).
    await bearerClient(s, DeviceService, accessToken).listDevices({});
    clock.advance(16 * 60_000);
    await expect(bearerClient(s, DeviceService, accessToken).listDevices({})).rejects.toMatchObject({
      code: Code.Unauthenticated,
      rawMessage: "invalid access token: expired",
    });
    expect(refusals().at(-1)?.reason).toBe("invalid access token: expired");
  });

  it("rotates refresh tokens; a used one is refused and revokes its whole family", async () => {
    const first = await login("alice", "alice-password-1");
    const second = await auth().refresh({ refreshToken: first.refreshToken });
    secrets.push(second.accessToken, second.refreshToken);
    expect(second.refreshToken).not.toBe(first.refreshToken);
    await bearerClient(s, DeviceService, second.accessToken).listDevices({});
    await expect(auth().refresh({ refreshToken: first.refreshToken })).rejects.toMatchObject({ code: Code.Unauthenticated });
    // The thief replayed the old one: the legitimate holder's newer token is dead too.
    await expect(auth().refresh({ refreshToken: second.refreshToken })).rejects.toMatchObject({ code: Code.Unauthenticated });
    expect(capture.lines().some((l) => l.msg === "refresh token used twice: the session is revoked")).toBe(true);
    // Logout ends a session; a fresh login still works.
    const third = await login("alice", "alice-password-1");
    await auth().logout({ refreshToken: third.refreshToken });
    await expect(auth().refresh({ refreshToken: third.refreshToken })).rejects.toMatchObject({ code: Code.Unauthenticated });
    await expect(auth().refresh({ refreshToken: "tetherrt_made-up" })).rejects.toMatchObject({ code: Code.Unauthenticated });
  });

  it("API keys work as bearer tokens until revoked; the secret is shown once", async () => {
    const { accessToken } = await login("alice", "alice-password-1");
    const users = bearerClient(s, UserService, accessToken);
    const key = await users.createApiKey({ parent: "users/me", apiKey: { displayName: "backup script" }, currentPassword: "alice-password-1" });
    secrets.push(key.secret);
    expect(key.secret).toMatch(/^tether_/);
    expect(key.name).toMatch(/^users\/alice\/apiKeys\//);
    expect((await users.listApiKeys({ parent: "users/me" })).apiKeys.map((k) => [k.name, k.secret])).toEqual([[key.name, ""]]);
    expect((await bearerClient(s, UserService, key.secret).getUser({ name: "users/me" })).name).toBe("users/alice");
    await users.deleteApiKey({ name: key.name });
    await expect(bearerClient(s, UserService, key.secret).getUser({ name: "users/me" })).rejects.toMatchObject({ code: Code.Unauthenticated });
    expect(refusals().at(-1)?.reason).toBe("unknown or revoked API key");
    // Another user's keys are not yours to manage.
    await expect(users.createApiKey({ parent: "users/bob" })).rejects.toMatchObject({ code: Code.PermissionDenied });
  });

  it("changing your own password needs the current one; it ends your sessions", async () => {
    const session = await login("bob", "bob-password-1");
    const users = bearerClient(s, UserService, session.accessToken);
    secrets.push("bob-password-2", "not-bobs-password");
    await expect(users.setPassword({ name: "users/me", password: "bob-password-2" })).rejects.toMatchObject({ code: Code.PermissionDenied });
    await expect(users.setPassword({ name: "users/me", password: "bob-password-2", currentPassword: "not-bobs-password" })).rejects.toMatchObject({
      code: Code.PermissionDenied,
    });
    await expect(users.setPassword({ name: "users/alice", password: "bob-password-2", currentPassword: "bob-password-1" })).rejects.toMatchObject({
      code: Code.PermissionDenied,
    });
    await users.setPassword({ name: "users/me", password: "bob-password-2", currentPassword: "bob-password-1" });
    await expect(auth().refresh({ refreshToken: session.refreshToken })).rejects.toMatchObject({ code: Code.Unauthenticated });
    await expect(auth().login({ user: "bob", password: "bob-password-1" })).rejects.toMatchObject({ code: Code.Unauthenticated });
    await login("bob", "bob-password-2");
  });

  it("a deleted user's token stops working; the admin certificate's user can get a password", async () => {
    await admin(UserService).createUser({ userId: "temp", password: "temp-password-1" });
    secrets.push("temp-password-1");
    const { accessToken } = await login("temp", "temp-password-1");
    await admin(UserService).deleteUser({ name: "users/temp" });
    await expect(bearerClient(s, DeviceService, accessToken).listDevices({})).rejects.toMatchObject({ code: Code.Unauthenticated });

    expect(await admin(UserService).getUser({ name: "users/admin" })).toMatchObject({ admin: true, hasPassword: false });
    await admin(UserService).setPassword({ name: "users/admin", password: "admin-password-1" });
    secrets.push("admin-password-1");
    const adminLogin = await login("admin", "admin-password-1");
    expect((await bearerClient(s, UserService, adminLogin.accessToken).listUsers({})).users.length).toBeGreaterThan(3);
  });

  it("rate-limits failed logins per user name and address, and per client address over all names", async () => {
    clock.advance(600_000); // a fresh window
    secrets.push("guess-1");
    for (let i = 0; i < 3; i++) await expect(auth().login({ user: "victim", password: "guess-1" })).rejects.toMatchObject({ code: Code.Unauthenticated });
    // Now even the right password is refused without being checked, from this address (a back-off).
    await expect(auth().login({ user: "victim", password: "victim-password-1" })).rejects.toMatchObject({ code: Code.ResourceExhausted });
    expect(
      capture
        .lines()
        .filter((l) => l.msg === "login refused: too many failed attempts")
        .at(-1),
    ).toMatchObject({ user: "victim", by: "pair" });
    await login("bystander", "bystander-pw-1"); // the address has 3 failures of 8, and is now known good for bystander
    for (let i = 0; i < 5; i++) await expect(auth().login({ user: `guess${i}`, password: "guess-1" })).rejects.toMatchObject({ code: Code.Unauthenticated });
    await expect(auth().login({ user: "guess9", password: "guess-1" })).rejects.toMatchObject({ code: Code.ResourceExhausted });
    expect(
      capture
        .lines()
        .filter((l) => l.msg === "login refused: too many failed attempts")
        .at(-1),
    ).toMatchObject({ by: "address" });
    await login("bystander", "bystander-pw-1"); // a known-good pair is not held back by the address's ceiling
    clock.advance(600_000);
    await login("victim", "victim-password-1");
  });

  it("never logs a password, token or API key", () => {
    const text = capture.text();
    expect(text.length).toBeGreaterThan(1000);
    for (const secret of secrets) expect(text.includes(secret), `a secret of ${secret.length} chars in the log`).toBe(false);
    expect(text).not.toMatch(/scrypt\$/);
    expect(text).not.toMatch(/"stack"/);
  });
});

/** A raw Connect call with a given authorization header, returning the HTTP status. */
async function fetchStatus(authorization: string): Promise<number> {
  const https = await import("node:https");
  return new Promise((resolve, reject) => {
    const req = https.request(
      `${s.baseUrl}/tether.v1.DeviceService/ListDevices`,
      { method: "POST", ca: s.admin.ca, headers: { "content-type": "application/json", authorization } },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on("error", reject);
    req.end("{}");
  });
}
