import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { createAccessFor } from "../core/access/access-for.js";
import { createRightsResolver } from "../core/access/rights-resolver.js";
import { createShareService } from "../core/access/share-service.js";
import { createAuthService } from "../core/auth/auth-service.js";
import { createLoginLimiter } from "../core/auth/rate-limit.js";
import { createSessionRevocations } from "../core/auth/session-revocations.js";
import { createTokenIssuer } from "../core/auth/tokens.js";
import { createUserService } from "../core/users/user-service.js";
import type { TetherConfig } from "../config.js";
import type { Logger } from "../log.js";
import { ensurePrivateDir, writePrivateFile } from "../ops/file-modes.js";
import { BOOTSTRAP_ADMIN } from "./certificates.js";
import type { Infrastructure } from "./infrastructure.js";

/** Users, tokens, sessions and rights: AuthService, UserService, ShareService and what the auth interceptor asks. */
export async function startAccess(x: Infrastructure) {
  const { config, clock, stores } = x;
  const userStore = stores.users;
  const credStore = stores.credentials;
  const grantStore = stores.grants;
  const authLog = x.log.child({ component: "auth" });
  // In-process in embedded mode; with replicas the production bus carries it (same interface).
  const rightsResolver = createRightsResolver({ repo: grantStore, feed: x.feeds.rightsFeed, clock, log: authLog, ttlMs: config.auth.rightsCacheMs });
  if (await userStore.ensureUser({ name: BOOTSTRAP_ADMIN, displayName: "Administrator", admin: true, passwordHash: null, createTime: clock.now() })) {
    authLog.info({ user: BOOTSTRAP_ADMIN }, "created the admin user (no password: `tether users set-password admin` enables login)");
  }
  const keySecret = await signingKeySecret(config, x.db.embedded, authLog);
  const tokens = createTokenIssuer({
    keySecret,
    creds: credStore,
    clock,
    log: authLog,
    issuer: config.auth.issuer,
    audience: config.auth.audience,
    accessTtlMs: config.auth.accessTokenTtlS * 1000,
    rotateMs: config.auth.signingKeyRotateS * 1000,
  });
  await tokens.rotate();
  // Ended sessions: in memory for the hot path, the table re-read every poll (see SessionRevocations).
  const sessions = createSessionRevocations({
    repo: credStore,
    feed: x.feeds.sessionFeed,
    clock,
    log: authLog,
    windowMs: tokens.maxTokenAgeMs,
    pollMs: config.auth.sessionRevocationPollMs,
  });
  await sessions.start();
  x.life.add({ name: "session revocations", stop: () => sessions.stop() });
  const a = config.auth;
  const limiter = createLoginLimiter(
    {
      freeAttempts: a.loginFreeAttempts,
      backoffBaseMs: a.loginBackoffBaseS * 1000,
      backoffMaxMs: a.loginBackoffMaxS * 1000,
      perUser: a.loginMaxFailuresPerUser,
      perAddress: a.loginMaxFailuresPerAddress,
      windowMs: a.loginWindowS * 1000,
    },
    stores.loginThrottle,
    clock,
  );
  const auth = createAuthService({
    users: userStore,
    creds: credStore,
    tokens,
    limiter,
    sessions,
    clock,
    log: authLog,
    refreshTtlMs: config.auth.refreshTokenTtlS * 1000,
  });
  const users = createUserService({ users: userStore, creds: credStore, rights: rightsResolver, sessions, clock });
  const shares = createShareService({ grants: grantStore, users: userStore, devices: stores.devices, rights: rightsResolver, clock });
  const accessFor = createAccessFor({ rights: rightsResolver, bootstrapAdmin: BOOTSTRAP_ADMIN });
  const rotateTokens = () => void tokens.rotate().catch((err: unknown) => authLog.error({ err }, "signing key rotation failed"));
  // `keySecret` also seals webhook secrets (src/app/webhooks.ts): one secret for every replica to share.
  return { auth, users, shares, sessions, accessFor, rotateTokens, keySecret };
}

export type Access = Awaited<ReturnType<typeof startAccess>>;

/**
 * The secret that seals JWT signing keys at rest: configured, or for the embedded database one
 * generated next to it (0600) on first start. Production without one stores keys unsealed.
 */
async function signingKeySecret(config: TetherConfig, embedded: boolean, log: Logger): Promise<string | undefined> {
  if (config.auth.signingKeySecret) return config.auth.signingKeySecret;
  if (!embedded) {
    log.warn("TETHER_SIGNING_KEY_SECRET is not set: JWT signing keys are stored unsealed in the database");
    return undefined;
  }
  const file = path.join(config.dataDir, "signing-key.secret");
  try {
    return (await readFile(file, "utf8")).trim();
  } catch {
    const secret = randomBytes(32).toString("base64url");
    await ensurePrivateDir(config.dataDir);
    await writePrivateFile(file, secret, "wx").catch(async () => undefined);
    return (await readFile(file, "utf8")).trim();
  }
}
