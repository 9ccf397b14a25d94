import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthService } from "../../gen/tether/v1/auth_service_pb.js";
import { UserService } from "../../gen/tether/v1/user_service_pb.js";
import { anonymousClient, bearerClient } from "../helpers/auth.js";
import { connectClient, startTestStack, type TestStack } from "../helpers/stack.js";

/**
 * Cookie sessions for the web console: with `x-tether-session: cookie` the refresh token travels
 * only in an HttpOnly cookie, never in the body. The client here speaks Connect over HTTP/1.1 with
 * no client certificate, as a browser does, and handles the cookie by hand.
 */
let s: TestStack;
beforeAll(async () => {
  s = await startTestStack();
  await connectClient(s, UserService, "grpc").createUser({ userId: "carol", password: "carol-password-1" });
}, 60_000);
afterAll(async () => {
  await s?.cleanup();
});

/** An AuthService client in the browser's shape, returning the Set-Cookie header of each answer. */
function browserAuth() {
  const client = createClient(AuthService, createConnectTransport({ baseUrl: s.baseUrl, httpVersion: "1.1", nodeOptions: { ca: s.admin.ca } }));
  const call = async <T>(fn: (opts: { headers: Record<string, string>; onHeader: (h: Headers) => void }) => Promise<T>, cookie?: string, cookieMode = true) => {
    let setCookie: string | null = null;
    const headers: Record<string, string> = {};
    if (cookieMode) headers["x-tether-session"] = "cookie";
    if (cookie !== undefined) headers.cookie = cookie;
    const res = await fn({ headers, onHeader: (h) => (setCookie = h.get("set-cookie")) });
    return { res, setCookie: setCookie as string | null };
  };
  return {
    login: (cookieMode = true) => call((o) => client.login({ user: "carol", password: "carol-password-1" }, o), undefined, cookieMode),
    refresh: (cookie: string) => call((o) => client.refresh({}, o), cookie),
    logout: (cookie: string) => call((o) => client.logout({}, o), cookie),
  };
}

/** `name=value` and the attributes of one Set-Cookie header. */
function parseSetCookie(h: string | null) {
  expect(h).toBeTruthy();
  const [pair, ...attrs] = h!.split(";").map((p) => p.trim());
  const [name, value] = [pair!.slice(0, pair!.indexOf("=")), pair!.slice(pair!.indexOf("=") + 1)];
  const map = new Map(attrs.map((a) => [a.split("=")[0]!.toLowerCase(), a.includes("=") ? a.slice(a.indexOf("=") + 1) : true] as const));
  return { name, value, cookie: `${name}=${value}`, attrs: map };
}

describe("cookie sessions for the web console", () => {
  it("Login sets an HttpOnly, Secure, SameSite=Strict cookie on the AuthService path and leaves the body's refresh token empty", async () => {
    const { res, setCookie } = await browserAuth().login();
    expect(res.refreshToken).toBe("");
    expect(res.accessToken).not.toBe("");
    expect(res.user).toBe("users/carol");
    const c = parseSetCookie(setCookie);
    expect(c.name).toBe("tether_refresh");
    expect(c.value).toMatch(/^tetherrt_/);
    expect(c.attrs.get("httponly")).toBe(true);
    expect(c.attrs.get("secure")).toBe(true);
    expect(c.attrs.get("samesite")).toBe("Strict");
    expect(c.attrs.get("path")).toBe("/tether.v1.AuthService/");
    // Max-Age is the refresh token's lifetime (30 days by default), give or take the call's duration.
    const lifetime = Number(res.refreshTokenExpireTime!.seconds) - Math.floor(Date.now() / 1000);
    expect(Math.abs(Number(c.attrs.get("max-age")) - lifetime)).toBeLessThanOrEqual(5);
    expect(lifetime).toBeGreaterThan(29 * 86400);
    // The access token works as a bearer.
    await bearerClient(s, UserService, res.accessToken, "connect").getUser({ name: "users/me" });
  });

  it("without the header, Login answers as before: refresh token in the body, no cookie", async () => {
    const { res, setCookie } = await browserAuth().login(false);
    expect(res.refreshToken).toMatch(/^tetherrt_/);
    expect(setCookie).toBeNull();
    // And a plain gRPC client refreshes with the body token.
    const next = await anonymousClient(s, AuthService).refresh({ refreshToken: res.refreshToken });
    expect(next.refreshToken).toMatch(/^tetherrt_/);
  });

  it("Refresh from the cookie rotates it; the old cookie is refused afterwards", async () => {
    const b = browserAuth();
    const first = parseSetCookie((await b.login()).setCookie);
    const { res, setCookie } = await b.refresh(`other=1; ${first.cookie}`);
    expect(res.refreshToken).toBe("");
    expect(res.accessToken).not.toBe("");
    const second = parseSetCookie(setCookie);
    expect(second.value).not.toBe(first.value);
    expect(second.attrs.get("httponly")).toBe(true);
    // The first cookie was used once: presenting it again is refused (and revokes the family).
    const reused = await b.refresh(first.cookie).catch((e: unknown) => ConnectError.from(e));
    expect(reused).toMatchObject({ code: Code.Unauthenticated });
    // No cookie at all: refused too.
    const none = await b.refresh("").catch((e: unknown) => ConnectError.from(e));
    expect(none).toMatchObject({ code: Code.Unauthenticated });
  });

  it("a new Login in cookie mode ends the session of the cookie it replaces", async () => {
    const client = createClient(AuthService, createConnectTransport({ baseUrl: s.baseUrl, httpVersion: "1.1", nodeOptions: { ca: s.admin.ca } }));
    const b = browserAuth();
    const old = parseSetCookie((await b.login()).setCookie);
    await client.login({ user: "carol", password: "carol-password-1" }, { headers: { "x-tether-session": "cookie", cookie: old.cookie } });
    const after = await b.refresh(old.cookie).catch((e: unknown) => ConnectError.from(e));
    expect(after).toMatchObject({ code: Code.Unauthenticated });
  });

  it("Logout revokes the session from the cookie and clears the cookie", async () => {
    const b = browserAuth();
    const c = parseSetCookie((await b.login()).setCookie);
    const { setCookie } = await b.logout(c.cookie);
    const cleared = parseSetCookie(setCookie);
    expect(cleared.name).toBe("tether_refresh");
    expect(cleared.value).toBe("");
    expect(cleared.attrs.get("max-age")).toBe("0");
    expect(cleared.attrs.get("path")).toBe("/tether.v1.AuthService/");
    const after = await b.refresh(c.cookie).catch((e: unknown) => ConnectError.from(e));
    expect(after).toMatchObject({ code: Code.Unauthenticated });
  });
});
