import { timestampDate } from "@bufbuild/protobuf/wkt";
import { type Client, Code, ConnectError } from "@connectrpc/connect";
import type { AuthService, LoginResponse } from "../../../gen/tether/v1/auth_service_pb.js";

/**
 * The console's session, behind one small interface so the way a browser proves who it is can
 * change without touching the pages.
 *
 * Two ways in:
 * - **Password** (`tether.v1.AuthService`): `login()` calls Login with `x-tether-session: cookie`
 *   (added by the transport in api.ts), so the server puts the refresh token in an `HttpOnly;
 *   Secure; SameSite=Strict` cookie scoped to the AuthService path and returns an empty
 *   `refresh_token`: no page script ever sees it. The short-lived access token lives only in this
 *   module's memory (never localStorage or sessionStorage, so an injected script finds no durable
 *   token, and the CSP forbids injected scripts anyway). A reload calls Refresh, which reads the
 *   cookie; the token is refreshed again shortly before it expires, and once more on an
 *   UNAUTHENTICATED answer. `logout()` calls Logout, which revokes the session and clears the cookie.
 * - **Client certificate**: the browser presents a certificate from Tether's CA (OU=users) during
 *   the TLS handshake, and every call is authenticated by it. There is nothing to store and
 *   nothing to log out of: the browser owns the certificate.
 */

export type SessionState = { kind: "unknown" } | { kind: "signed-out"; reason?: string } | { kind: "certificate" } | { kind: "password"; username: string };

type Listener = (s: SessionState) => void;

/** Refresh this long before the access token expires (it lives ~15 min). */
const REFRESH_AHEAD_MS = 60_000;

let state: SessionState = { kind: "unknown" };
let accessToken: string | undefined;
let refreshTimer: ReturnType<typeof setTimeout> | undefined;
/** The one Refresh in flight: two at once would present the same single-use cookie twice, which revokes the session. */
let refreshing: Promise<boolean> | undefined;
let auth: Client<typeof AuthService> | undefined;
const listeners = new Set<Listener>();

function set(next: SessionState): void {
  state = next;
  for (const l of listeners) l(state);
}

function client(): Client<typeof AuthService> {
  if (!auth) throw new Error("session.use() was not called with an AuthService client");
  return auth;
}

/** Keeps the access token from a Login/Refresh answer and schedules the next refresh. */
function adopt(res: LoginResponse): string {
  if (!res.accessToken) throw new AuthError(Code.Unauthenticated, "the server answered without an access token");
  accessToken = res.accessToken;
  clearTimeout(refreshTimer);
  const expires = res.accessTokenExpireTime ? timestampDate(res.accessTokenExpireTime).getTime() : Date.now() + 5 * 60_000;
  const inMs = Math.max(5_000, expires - Date.now() - REFRESH_AHEAD_MS);
  refreshTimer = setTimeout(() => {
    void session.refresh().then((ok) => ok || session.expired());
  }, inMs);
  return res.user.replace(/^users\//, "");
}

/**
 * Runs `fn` holding a lock shared by every tab of this origin (Web Locks), so two tabs reloading
 * at once do not both present the same refresh cookie. Without Web Locks it just runs `fn`.
 */
async function acrossTabs<T>(fn: () => Promise<T>): Promise<T> {
  const locks = (navigator as Navigator & { locks?: LockManager }).locks;
  return locks ? (locks.request("tether-refresh", fn) as Promise<T>) : fn();
}

export const session = {
  get state(): SessionState {
    return state;
  },
  /** The bearer token to send, if signed in with a password. */
  get accessToken(): string | undefined {
    return accessToken;
  },
  subscribe(l: Listener): () => void {
    listeners.add(l);
    return () => listeners.delete(l);
  },
  /** Wires the AuthService client (built on the console's transport in api.ts). */
  use(c: Client<typeof AuthService>): void {
    auth = c;
  },

  /**
   * Finds out how (and whether) this browser is signed in: the refresh cookie first (a reload
   * after a password sign-in), then the client certificate, tested with `probe` (a cheap
   * authenticated call that resolves to true when it succeeds, false on UNAUTHENTICATED).
   */
  async restore(probe: () => Promise<boolean>): Promise<void> {
    const user = await acrossTabs(() => client().refresh({})).then(adopt, () => undefined);
    if (user !== undefined) {
      set({ kind: "password", username: user });
      return;
    }
    set((await probe()) ? { kind: "certificate" } : { kind: "signed-out" });
  },

  async login(username: string, password: string): Promise<void> {
    try {
      const res = await client().login({ user: username, password });
      set({ kind: "password", username: adopt(res) });
    } catch (err) {
      const ce = ConnectError.from(err);
      throw new AuthError(ce.code, ce.rawMessage);
    }
  },

  /** Gets a new access token from the refresh cookie; false if that fails. Concurrent callers share one call. */
  refresh(): Promise<boolean> {
    refreshing ??= acrossTabs(() => client().refresh({}))
      .then((res) => {
        adopt(res);
        return true;
      })
      .catch(() => false)
      .finally(() => {
        refreshing = undefined;
      });
    return refreshing;
  },

  async logout(): Promise<void> {
    accessToken = undefined;
    clearTimeout(refreshTimer);
    await client()
      .logout({})
      .catch(() => undefined);
    set({ kind: "signed-out", reason: "You are signed out." });
  },

  /** The server refused our credentials mid-session (token revoked and not refreshable). */
  expired(): void {
    if (state.kind !== "password") return;
    accessToken = undefined;
    clearTimeout(refreshTimer);
    set({ kind: "signed-out", reason: "Your session expired. Please sign in again." });
  },
};

/** A failed sign-in, with the Connect code. */
export class AuthError extends Error {
  constructor(
    readonly code: Code,
    message: string,
  ) {
    super(message);
  }
}
