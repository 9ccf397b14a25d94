import { randomUUID } from "node:crypto";
import type { Clock } from "../clock.js";
import { ResourceExhaustedError, UnauthenticatedError } from "../errors.js";
import type { CoreLogger } from "../log.js";
import type { CredentialRepository, UserRepository } from "../ports/auth.js";
import { verifyPassword } from "./passwords.js";
import type { LoginLimiter } from "./rate-limit.js";
import { API_KEY_PREFIX, newSecret, REFRESH_PREFIX, secretHash } from "./secrets.js";
import { apiKeySession, type SessionRevocations } from "./session-revocations.js";
import type { createTokenIssuer } from "./tokens.js";

export interface AuthServiceDeps {
  users: UserRepository;
  creds: CredentialRepository;
  tokens: ReturnType<typeof createTokenIssuer>;
  limiter: LoginLimiter;
  /** Ended sessions, whose access tokens are refused. */
  sessions: Pick<SessionRevocations, "isEnded" | "ended">;
  clock: Clock;
  log: CoreLogger;
  /** Refresh token lifetime, ms. @default 30 days */
  refreshTtlMs: number;
}

/** What Login and Refresh hand out. */
export interface Session {
  user: string;
  accessToken: string;
  accessExpireTime: Date;
  refreshToken: string;
  refreshExpireTime: Date;
}

/** Who a bearer credential belongs to. */
export interface BearerIdentity {
  user: string;
  via: "token" | "api_key";
  /** An access token's session (the `sid` claim), or an API key's (`apiKeySession`). */
  session?: string;
  /** The API key's id (`users/{user}/apiKeys/{key}`), for an API key: what the audit log names as the principal. */
  keyId?: string;
}

export type AuthService = ReturnType<typeof createAuthService>;

/**
 * Login, refresh rotation with reuse detection, logout, and bearer authentication. Every refusal
 * is logged with its reason (never the secret); the client gets UNAUTHENTICATED with a message
 * that does not say whether the user exists.
 */
export function createAuthService(d: AuthServiceDeps) {
  const { users, creds, tokens, limiter, sessions, clock, log } = d;

  /** A new session (refresh token family) for `user`. */
  async function issue(user: string): Promise<Session> {
    const now = clock.now();
    const refreshToken = newSecret(REFRESH_PREFIX);
    const refreshExpireTime = new Date(now.getTime() + d.refreshTtlMs);
    const family = randomUUID();
    await creds.insertRefreshToken({ hash: secretHash(refreshToken), family, user, createTime: now, expireTime: refreshExpireTime });
    const access = await tokens.sign(user, family);
    return { user, accessToken: access.token, accessExpireTime: access.expireTime, refreshToken, refreshExpireTime };
  }

  return {
    async login(user: string, password: string, address: string): Promise<Session> {
      // The attempt is reserved before the password is checked: parallel guesses queue on the
      // same counters, so they cost no more checks than sequential ones.
      const r = await limiter.reserve(user, address);
      if (!r.ok) {
        const retryS = Math.ceil(r.retryMs / 1000);
        log.warn({ user, address, by: r.by, retryS }, "login refused: too many failed attempts");
        const hint = r.by === "user" ? " (or from an address this user signed in from before)" : "";
        throw new ResourceExhaustedError(`too many failed logins; retry in ${retryS} s${hint}`, { retryDelayMs: r.retryMs });
      }
      const record = await users.getUser(user);
      // Verified even for unknown users (against a dummy hash): same time, same answer.
      const ok = await verifyPassword(password, record?.passwordHash);
      if (!ok || !record) {
        log.warn({ user, address, reason: !record ? "unknown user" : record.passwordHash ? "wrong password" : "no password set" }, "login refused");
        throw new UnauthenticatedError("wrong user name or password");
      }
      await limiter.succeeded(r.reservation);
      log.info({ user, address }, "login");
      return issue(record.name);
    },

    async refresh(refreshToken: string): Promise<Session> {
      const now = clock.now();
      const next = newSecret(REFRESH_PREFIX);
      const expireTime = new Date(now.getTime() + d.refreshTtlMs);
      const r = await creds.rotateRefreshToken(secretHash(refreshToken), { hash: secretHash(next), createTime: now, expireTime }, now);
      if (r.outcome === "reused") {
        // The family is revoked in the database; its access tokens die here now, elsewhere within the poll.
        sessions.ended([r.family]);
        log.warn({ user: r.user, family: r.family }, "refresh token used twice: the session is revoked");
        throw new UnauthenticatedError("refresh token already used; sign in again");
      }
      if (r.outcome !== "rotated") {
        log.warn({ reason: r.outcome }, "refresh refused");
        throw new UnauthenticatedError(`refresh token ${r.outcome === "expired" ? "expired" : "not recognised"}; sign in again`);
      }
      const access = await tokens.sign(r.user, r.family);
      return { user: r.user, accessToken: access.token, accessExpireTime: access.expireTime, refreshToken: next, refreshExpireTime: expireTime };
    },

    /** Ends the session of the refresh token: its refresh tokens and every access token issued in it. */
    async logout(refreshToken: string): Promise<void> {
      const ended = await creds.revokeFamilyOf(secretHash(refreshToken), clock.now());
      if (!ended) return;
      sessions.ended([ended.family]);
      log.info({ user: ended.user, session: ended.family }, "logout");
    },

    /** Verifies a bearer credential: an API key (`tether_…`) or an access token. */
    async authenticate(bearer: string): Promise<BearerIdentity> {
      if (bearer.startsWith(API_KEY_PREFIX)) {
        const now = clock.now();
        const key = await creds.useApiKey(secretHash(bearer), now);
        if (!key) throw new UnauthenticatedError("unknown or revoked API key");
        if (key.expireTime && key.expireTime.getTime() <= now.getTime()) throw new UnauthenticatedError(`API key users/${key.user}/apiKeys/${key.id} expired`);
        // Its "session" is recorded when it is revoked: a stream opened with it ends then.
        return { user: key.user, via: "api_key", session: apiKeySession(key.id), keyId: key.id };
      }
      const { user, session } = await tokens.verify(bearer);
      // A map lookup: ended sessions are held in memory (see SessionRevocations for the staleness bound).
      if (sessions.isEnded(session))
        throw new UnauthenticatedError("access token of an ended session (logged out, refresh token reused or password changed); sign in again");
      return { user, via: "token", session };
    },
  };
}
