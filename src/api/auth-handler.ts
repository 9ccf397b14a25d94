import { create } from "@bufbuild/protobuf";
import { EmptySchema, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { type AuthService as AuthServiceDesc, type LoginResponse, LoginResponseSchema } from "../../gen/tether/v1/auth_service_pb.js";
import type { AuthService, Session } from "../core/auth/auth-service.js";
import type { Clock } from "../core/clock.js";
import { InvalidArgumentError, UnauthenticatedError } from "../core/errors.js";
import { kPeerAddress } from "./auth.js";

/**
 * The request header by which the web console asks for a cookie session. Only the console sets
 * it; every other client (CLI, grpc-js, apps) gets the refresh token in the response body as before.
 */
export const SESSION_HEADER = "x-tether-session";
/** The refresh cookie's name. */
export const REFRESH_COOKIE = "tether_refresh";
/**
 * The cookie goes back only to the AuthService (Refresh and Logout), never with ordinary calls,
 * and never to another site (SameSite=Strict); page scripts cannot read it (HttpOnly).
 */
const COOKIE_ATTRIBUTES = "HttpOnly; Secure; SameSite=Strict; Path=/tether.v1.AuthService/";

function toResponse(s: Session, body: "with-refresh-token" | "without-refresh-token"): LoginResponse {
  return create(LoginResponseSchema, {
    accessToken: s.accessToken,
    accessTokenExpireTime: timestampFromDate(s.accessExpireTime),
    refreshToken: body === "with-refresh-token" ? s.refreshToken : "",
    refreshTokenExpireTime: timestampFromDate(s.refreshExpireTime),
    user: `users/${s.user}`,
  });
}

/** Whether the caller (the console) asked for the refresh token as an HttpOnly cookie. */
function cookieMode(ctx: HandlerContext): boolean {
  return ctx.requestHeader.get(SESSION_HEADER)?.trim().toLowerCase() === "cookie";
}

/** The refresh token from the `tether_refresh` cookie, or "" (HTTP/2 may split cookies; all are read). */
export function refreshCookie(ctx: HandlerContext): string {
  const raw = ctx.requestHeader.get("cookie") ?? "";
  for (const part of raw.split(/[;,]/)) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === REFRESH_COOKIE) return part.slice(eq + 1).trim();
  }
  return "";
}

/**
 * AuthService over Connect/gRPC: callable without credentials (see PUBLIC_METHODS in auth.ts).
 *
 * Cookie sessions for browsers: with `x-tether-session: cookie`, Login and Refresh put the refresh
 * token in an HttpOnly cookie and leave the body's `refresh_token` empty, so no page script ever
 * holds it; Refresh and Logout take the token from the cookie when the body has none, and Logout
 * clears the cookie. The access token still travels in the body (the console keeps it in memory).
 */
export function authHandler(auth: AuthService, clock: Clock): ServiceImpl<typeof AuthServiceDesc> {
  /** Answers with the session, as a cookie plus an empty body field when the console asked so. */
  function answer(s: Session, ctx: HandlerContext): LoginResponse {
    if (!cookieMode(ctx)) return toResponse(s, "with-refresh-token");
    const maxAge = Math.max(0, Math.floor((s.refreshExpireTime.getTime() - clock.now().getTime()) / 1000));
    ctx.responseHeader.append("set-cookie", `${REFRESH_COOKIE}=${s.refreshToken}; Max-Age=${maxAge}; ${COOKIE_ATTRIBUTES}`);
    return toResponse(s, "without-refresh-token");
  }
  return {
    async login(req, ctx) {
      if (req.user === "" || req.user.length > 63) throw InvalidArgumentError.field("user", "is required (at most 63 characters)");
      // No user name has them, and PostgreSQL text cannot hold NUL: refuse before the throttle stores it.
      if (/[\u0000-\u001f\u007f]/.test(req.user)) throw InvalidArgumentError.field("user", "must not contain control characters");
      if (req.password.length > 1024) throw InvalidArgumentError.field("password", "must be at most 1024 characters");
      const session = await auth.login(req.user, req.password, ctx.values.get(kPeerAddress));
      // The browser's previous session, if it still had one, ends: its cookie is being replaced.
      const previous = cookieMode(ctx) ? refreshCookie(ctx) : "";
      if (previous !== "") await auth.logout(previous);
      return answer(session, ctx);
    },
    async refresh(req, ctx) {
      const token = req.refreshToken || refreshCookie(ctx);
      // A console opened with no session (or with a client certificate) asks first: not worth a log line.
      if (token === "") throw new UnauthenticatedError("no refresh token: sign in");
      return answer(await auth.refresh(token), ctx);
    },
    async logout(req, ctx) {
      const token = req.refreshToken || refreshCookie(ctx);
      if (token !== "") await auth.logout(token);
      // Cleared whenever the browser carried one, even if the session was already gone.
      if (cookieMode(ctx) || refreshCookie(ctx) !== "") ctx.responseHeader.append("set-cookie", `${REFRESH_COOKIE}=; Max-Age=0; ${COOKIE_ATTRIBUTES}`);
      return create(EmptySchema);
    },
  };
}
