import { create } from "@bufbuild/protobuf";
import { DurationSchema, timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthService } from "../../gen/tether/v1/auth_service_pb.js";
import { DeviceService, WatchDevicesResponse_Type } from "../../gen/tether/v1/device_service_pb.js";
import { UserService } from "../../gen/tether/v1/user_service_pb.js";
import { anonymousClient, bearerClient, captureLogger } from "../helpers/auth.js";
import { fakeClock } from "../helpers/fake-clock.js";
import { connectClient, startTestStack, type TestStack } from "../helpers/stack.js";

// Issue 16 point 9: a credential must not outlive the session (or the password) it came from.
const capture = captureLogger();
const clock = fakeClock(new Date());
let s: TestStack;
const password = (user: string) => `${user}-password-1`;
beforeAll(async () => {
  s = await startTestStack({}, { log: capture.log, clock });
  for (const user of ["ann", "ben", "cal", "dee", "eve", "fay", "gus", "hal", "ivy", "nopw"]) {
    await admin().createUser({ userId: user, password: user === "nopw" ? "" : password(user) });
  }
}, 60_000);
afterAll(async () => {
  await s?.cleanup();
});

const admin = () => connectClient(s, UserService, "grpc");
const auth = () => anonymousClient(s, AuthService);
const login = (user: string, pw = password(user)) => auth().login({ user, password: pw });
/** A call that needs a valid credential; resolves to the error code, or "ok". */
async function probe(bearer: string): Promise<Code | "ok"> {
  try {
    await bearerClient(s, DeviceService, bearer).listDevices({});
    return "ok";
  } catch (err) {
    return ConnectError.from(err).code;
  }
}
const lastRefusal = () =>
  capture
    .lines()
    .filter((l) => l.msg === "call refused")
    .at(-1)?.reason;

describe("access tokens end with their session", () => {
  it("Logout ends every access token of that session, not the user's other sessions", async () => {
    const first = await login("ann");
    const refreshed = await auth().refresh({ refreshToken: first.refreshToken }); // same session, newer token
    const other = await login("ann");
    expect(await probe(first.accessToken)).toBe("ok");
    await auth().logout({ refreshToken: refreshed.refreshToken });
    expect(await probe(first.accessToken)).toBe(Code.Unauthenticated);
    expect(await probe(refreshed.accessToken)).toBe(Code.Unauthenticated);
    expect(lastRefusal()).toMatch(/ended session/);
    expect(await probe(other.accessToken)).toBe("ok");
  });

  it("refresh-token reuse ends every access token of the session, the thief's and the holder's", async () => {
    const stolen = await login("ben");
    const holder = await auth().refresh({ refreshToken: stolen.refreshToken });
    const bystander = await login("ben");
    // The thief replays the refresh token the holder already used.
    await expect(auth().refresh({ refreshToken: stolen.refreshToken })).rejects.toMatchObject({ code: Code.Unauthenticated });
    expect(await probe(stolen.accessToken)).toBe(Code.Unauthenticated);
    expect(await probe(holder.accessToken)).toBe(Code.Unauthenticated);
    expect(await probe(bystander.accessToken)).toBe("ok");
  });

  it("SetPassword ends every access token of that user, and of no other user; the new password signs in", async () => {
    const a = await login("cal");
    const b = await login("cal");
    const otherUser = await login("dee");
    await bearerClient(s, UserService, a.accessToken).setPassword({ name: "users/me", password: "cal-password-2", currentPassword: password("cal") });
    expect(await probe(a.accessToken)).toBe(Code.Unauthenticated);
    expect(await probe(b.accessToken)).toBe(Code.Unauthenticated);
    expect(await probe(otherUser.accessToken)).toBe("ok");
    const fresh = await login("cal", "cal-password-2");
    expect(await probe(fresh.accessToken)).toBe("ok");
    // An admin's reset (no current password) ends them too.
    await admin().setPassword({ name: "users/cal", password: "cal-password-3" });
    expect(await probe(fresh.accessToken)).toBe(Code.Unauthenticated);
    expect(await probe(otherUser.accessToken)).toBe("ok");
  });

  it("a stream opened with the token ends with UNAUTHENTICATED when its session ends; other streams go on", async () => {
    const ended = await login("hal");
    const kept = await login("hal");
    const watch = async (token: string) => {
      const it = bearerClient(s, DeviceService, token).watchDevices({})[Symbol.asyncIterator]();
      // Open for sure: the initial snapshot (empty for hal) has been sent.
      for (;;) if ((await it.next()).value?.type === WatchDevicesResponse_Type.INITIAL_COMPLETE) return it;
    };
    const doomed = await watch(ended.accessToken);
    const survivor = await watch(kept.accessToken);
    const next = doomed.next();
    await auth().logout({ refreshToken: ended.refreshToken });
    await expect(next).rejects.toMatchObject({ code: Code.Unauthenticated, rawMessage: expect.stringMatching(/session of this access token ended/) });
    // The other session's stream still delivers: a device hal creates arrives on it.
    const change = survivor.next();
    await bearerClient(s, DeviceService, kept.accessToken).createDevice({ deviceId: "hal-led", device: { kind: { case: "led", value: {} } } });
    expect((await change).value).toMatchObject({ type: WatchDevicesResponse_Type.CHANGED, device: { name: "devices/hal-led" } });
    await survivor.return?.();
  });

  it("a deleted and re-created user does not inherit the old user's tokens", async () => {
    await admin().createUser({ userId: "phoenix", password: password("phoenix") });
    const old = await login("phoenix");
    await admin().deleteUser({ name: "users/phoenix" });
    await admin().createUser({ userId: "phoenix", password: password("phoenix") });
    expect(await probe(old.accessToken)).toBe(Code.Unauthenticated);
  });
});

describe("API keys", () => {
  it("creating one with a token or an API key needs the caller's current password; a client certificate does not", async () => {
    const { accessToken } = await login("eve");
    const users = bearerClient(s, UserService, accessToken);
    const missing = await users.createApiKey({ parent: "users/me", apiKey: { displayName: "ci" } }).catch((e: unknown) => ConnectError.from(e));
    expect(missing).toMatchObject({ code: Code.InvalidArgument });
    expect((missing as ConnectError).rawMessage).toMatch(/^current_password: is required/);
    await expect(users.createApiKey({ parent: "users/me", currentPassword: "not-eves-password" })).rejects.toMatchObject({ code: Code.PermissionDenied });
    const key = await users.createApiKey({ parent: "users/me", apiKey: { displayName: "ci" }, currentPassword: password("eve") });
    expect(key.secret).toMatch(/^tether_/);
    // An API key cannot mint another one without the password either.
    const byKey = bearerClient(s, UserService, key.secret);
    await expect(byKey.createApiKey({ parent: "users/me" })).rejects.toMatchObject({ code: Code.InvalidArgument });
    expect((await byKey.createApiKey({ parent: "users/me", currentPassword: password("eve") })).name).toMatch(/^users\/eve\/apiKeys\//);
    // The admin certificate needs no password; a user without one cannot confirm with one.
    const forNopw = await admin().createApiKey({ parent: "users/nopw", apiKey: { displayName: "made by admin" } });
    await expect(bearerClient(s, UserService, forNopw.secret).createApiKey({ parent: "users/me", currentPassword: "anything-at-all" })).rejects.toMatchObject({
      code: Code.FailedPrecondition,
    });
    // Nothing was stored by the refused calls.
    expect((await users.listApiKeys({ parent: "users/me" })).apiKeys.map((k) => k.displayName).sort()).toEqual(["", "ci"]);
    expect((await admin().listApiKeys({ parent: "users/nopw" })).apiKeys).toHaveLength(1);
  });

  it("a stolen token is no password oracle: at most 5 checks at once (also in parallel), then one a minute", async () => {
    const { accessToken } = await login("ivy");
    const users = bearerClient(s, UserService, accessToken);
    const guesses = await Promise.allSettled(
      Array.from({ length: 12 }, (_, i) => users.createApiKey({ parent: "users/me", currentPassword: `guess-${i}-password` })),
    );
    const codes = guesses.map((g) => (g.status === "rejected" ? ConnectError.from(g.reason).code : "ok"));
    expect(codes.filter((c) => c === Code.PermissionDenied)).toHaveLength(5);
    expect(codes.filter((c) => c === Code.ResourceExhausted)).toHaveLength(7);
    // Even the right password waits now, for SetPassword too.
    await expect(users.createApiKey({ parent: "users/me", currentPassword: password("ivy") })).rejects.toMatchObject({ code: Code.ResourceExhausted });
    await expect(users.setPassword({ name: "users/me", password: "ivy-password-2", currentPassword: password("ivy") })).rejects.toMatchObject({
      code: Code.ResourceExhausted,
    });
    clock.advance(61_000);
    expect((await users.createApiKey({ parent: "users/me", currentPassword: password("ivy") })).secret).toMatch(/^tether_/);
    expect((await users.listApiKeys({ parent: "users/me" })).apiKeys).toHaveLength(1);
  });

  it("an expired key is refused with UNAUTHENTICATED; a past or empty expiry is refused at create", async () => {
    const users = admin();
    const byTtl = await users.createApiKey({
      parent: "users/fay",
      apiKey: { displayName: "short", expiration: { case: "ttl", value: create(DurationSchema, { seconds: 120n }) } },
    });
    const at = new Date(clock.now().getTime() + 600_000);
    const byTime = await users.createApiKey({
      parent: "users/fay",
      apiKey: { displayName: "longer", expiration: { case: "expireTime", value: timestampFromDate(at) } },
    });
    expect(byTtl.expiration.case).toBe("expireTime");
    expect(timestampDate(byTtl.expiration.value as never).getTime()).toBe(clock.now().getTime() + 120_000);
    // Same create time (the fake clock stood still): ordered by id, so sorted here by name.
    const listed = (await users.listApiKeys({ parent: "users/fay" })).apiKeys.sort((x, y) => x.displayName.localeCompare(y.displayName));
    expect(listed.map((k) => [k.displayName, k.expiration.case])).toEqual([
      ["longer", "expireTime"],
      ["short", "expireTime"],
    ]);
    expect(timestampDate(listed[0]!.expiration.value as never).getTime()).toBe(at.getTime());
    expect(await probe(byTtl.secret)).toBe("ok");
    clock.advance(121_000);
    expect(await probe(byTtl.secret)).toBe(Code.Unauthenticated);
    expect(lastRefusal()).toMatch(/^API key users\/fay\/apiKeys\/[0-9a-f]+ expired$/);
    expect(await probe(byTime.secret)).toBe("ok");
    // Refused requests store nothing.
    const past = users.createApiKey({
      parent: "users/fay",
      apiKey: { expiration: { case: "expireTime", value: timestampFromDate(new Date(clock.now().getTime() - 1000)) } },
    });
    await expect(past).rejects.toMatchObject({ code: Code.InvalidArgument, rawMessage: "api_key.expire_time: must be in the future" });
    await expect(users.createApiKey({ parent: "users/fay", apiKey: { expiration: { case: "ttl", value: create(DurationSchema, {}) } } })).rejects.toMatchObject(
      { code: Code.InvalidArgument, rawMessage: "api_key.ttl: must be more than 0" },
    );
    await expect(
      users.createApiKey({ parent: "users/fay", apiKey: { expiration: { case: "ttl", value: create(DurationSchema, { seconds: 200n * 366n * 86_400n }) } } }),
    ).rejects.toMatchObject({ code: Code.InvalidArgument });
    expect((await users.listApiKeys({ parent: "users/fay" })).apiKeys).toHaveLength(2);
  });

  it("lists each key's last use, written at most once a minute", async () => {
    const key = await admin().createApiKey({ parent: "users/gus", apiKey: { displayName: "probe" } });
    const lastUse = async () => {
      const [k] = (await admin().listApiKeys({ parent: "users/gus" })).apiKeys;
      return k?.lastUsedTime ? timestampDate(k.lastUsedTime).getTime() : undefined;
    };
    expect(await lastUse()).toBeUndefined();
    const firstUse = clock.now().getTime();
    expect(await probe(key.secret)).toBe("ok");
    expect(await lastUse()).toBe(firstUse);
    clock.advance(30_000);
    expect(await probe(key.secret)).toBe("ok");
    expect(await lastUse()).toBe(firstUse); // not rewritten within the minute
    clock.advance(31_000);
    expect(await probe(key.secret)).toBe("ok");
    expect(await lastUse()).toBe(clock.now().getTime());
  });

  it("SetPassword with revoke_api_keys revokes the user's keys; without it they keep working", async () => {
    const kept = await admin().createApiKey({ parent: "users/dee", apiKey: { displayName: "kept" } });
    await admin().setPassword({ name: "users/dee", password: "dee-password-2" });
    expect(await probe(kept.secret)).toBe("ok");
    const { accessToken } = await login("dee", "dee-password-2");
    await bearerClient(s, UserService, accessToken).setPassword({
      name: "users/me",
      password: "dee-password-3",
      currentPassword: "dee-password-2",
      revokeApiKeys: true,
    });
    expect(await probe(kept.secret)).toBe(Code.Unauthenticated);
    expect(lastRefusal()).toBe("unknown or revoked API key");
    expect((await admin().listApiKeys({ parent: "users/dee" })).apiKeys).toEqual([]);
  });

  it("a stream opened with an API key ends with UNAUTHENTICATED when the key is revoked", async () => {
    const key = await admin().createApiKey({ parent: "users/gus", apiKey: { displayName: "watcher" } });
    const it = bearerClient(s, DeviceService, key.secret).watchDevices({})[Symbol.asyncIterator]();
    while ((await it.next()).value?.type !== WatchDevicesResponse_Type.INITIAL_COMPLETE);
    const next = it.next();
    await admin().deleteApiKey({ name: key.name });
    await expect(next).rejects.toMatchObject({ code: Code.Unauthenticated });
  });

  it("never logs a password, token or API key secret", () => {
    const text = capture.text();
    expect(text).not.toMatch(/tether_[A-Za-z0-9_-]{20,}|tetherrt_|eyJ[A-Za-z0-9_-]{20,}\./);
    expect(text).not.toMatch(/-password-\d/);
  });
});
