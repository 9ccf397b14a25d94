import { randomUUID, type webcrypto } from "node:crypto";
import { errors, exportJWK, generateKeyPair, importJWK, type JWTHeaderParameters, jwtVerify, SignJWT } from "jose";
import type { Clock } from "../clock.js";
import { UnauthenticatedError } from "../errors.js";
import type { CoreLogger } from "../log.js";
import type { CredentialRepository, SigningKey } from "../ports/auth.js";
import { createKeySealer } from "./key-sealing.js";

type CryptoKey = webcrypto.CryptoKey;

/** The only algorithm accepted: an allow-list is what defeats `alg: none` and HS256-with-the-public-key tricks. */
const ALG = "ES256";

export interface TokenOptions {
  creds: CredentialRepository;
  clock: Clock;
  log: CoreLogger;
  /** `iss` of issued tokens, required on verified ones. @default "tether" */
  issuer: string;
  /** `aud` likewise. @default "tether-api" */
  audience: string;
  /** Access token lifetime, ms. @default 15 minutes */
  accessTtlMs: number;
  /** A new signing key is made when the newest is older than this, ms. @default 7 days */
  rotateMs: number;
  /** Accepted clock skew between replicas and clients, seconds. @default 30 */
  clockToleranceS?: number;
  /**
   * Seals private keys at rest (AES-256-GCM); every replica needs the same one. Unset: stored plain.
   * Set, a key it did not seal is refused: it neither signs nor verifies (see `createKeySealer`).
   */
  keySecret?: string;
}

interface LoadedKey {
  kid: string;
  publicKey: CryptoKey;
  /** Undefined when sealed with a secret this process does not have: verify only. */
  privateKey?: CryptoKey;
  createTime: Date;
  retireTime: Date;
  expireTime: Date;
}

/** A refused token, with the reason for the log (the client sees a shorter message). */
export class TokenRejectedError extends UnauthenticatedError {
  constructor(readonly reason: string) {
    super(`invalid access token: ${reason}`);
  }
}

/**
 * Issues and verifies access tokens: ES256 JWTs signed with rotating keys kept in the database,
 * so every replica verifies every other's tokens. Old keys verify (never sign) until every token
 * they signed has expired, then are deleted.
 */
export function createTokenIssuer(o: TokenOptions) {
  const tolerance = o.clockToleranceS ?? 30;
  const sealer = createKeySealer(o.keySecret);
  let keys = new Map<string, LoadedKey>();
  // Keys refused once are not reconsidered (nor logged again) on every reload.
  const refused = new Set<string>();
  let lastReload = 0;

  async function load(k: SigningKey): Promise<LoadedKey | undefined> {
    const trusted = sealer.check(k.privateJwk, k.publicJwk);
    if (!trusted.ok) {
      refused.add(k.kid);
      // Not fatal: refusing to start would let one planted row keep the control plane down, and a
      // row planted later is found at a reload, not at start. A fresh sealed key replaces it;
      // tokens it signed fail and their clients refresh.
      o.log.error({ kid: k.kid, reason: trusted.reason }, "refused a token signing key found in the database: it neither signs nor verifies");
      return undefined;
    }
    const privateJwk = sealer.open(k.privateJwk);
    if (!privateJwk) o.log.warn({ kid: k.kid }, "cannot open a signing key (another TETHER_SIGNING_KEY_SECRET?): it only verifies");
    return {
      kid: k.kid,
      publicKey: (await importJWK(k.publicJwk, ALG)) as CryptoKey,
      privateKey: privateJwk ? ((await importJWK(privateJwk, ALG)) as CryptoKey) : undefined,
      createTime: k.createTime,
      retireTime: k.retireTime,
      expireTime: k.expireTime,
    };
  }

  async function reload(): Promise<void> {
    const now = o.clock.now();
    lastReload = now.getTime();
    const next = new Map<string, LoadedKey>();
    for (const k of await o.creds.signingKeys(now)) {
      if (refused.has(k.kid)) continue;
      const loaded = keys.get(k.kid) ?? (await load(k));
      if (loaded) next.set(k.kid, loaded);
    }
    keys = next;
  }

  function newest(): LoadedKey | undefined {
    const now = o.clock.now().getTime();
    let best: LoadedKey | undefined;
    for (const k of keys.values()) if (k.privateKey && k.retireTime.getTime() > now && (!best || k.createTime > best.createTime)) best = k;
    return best;
  }

  return {
    /** How long after it is issued a token can still verify (lifetime + clock tolerance), ms. */
    maxTokenAgeMs: o.accessTtlMs + tolerance * 1000,

    /** Loads the keys and makes a new one if the newest is due for rotation. Run at start and periodically. */
    async rotate(): Promise<void> {
      await reload();
      const now = o.clock.now();
      const current = newest();
      if (!current || now.getTime() - current.createTime.getTime() >= o.rotateMs) {
        const { publicKey, privateKey } = await generateKeyPair(ALG, { extractable: true });
        const retireTime = new Date(now.getTime() + 2 * o.rotateMs);
        const key: SigningKey = {
          kid: randomUUID(),
          algorithm: ALG,
          privateJwk: sealer.seal({ ...(await exportJWK(privateKey)) }),
          publicJwk: { ...(await exportJWK(publicKey)) },
          createTime: now,
          retireTime,
          expireTime: new Date(retireTime.getTime() + o.accessTtlMs + tolerance * 1000),
        };
        await o.creds.insertSigningKey(key);
        o.log.info({ kid: key.kid }, "new token signing key");
        await reload();
      }
      await o.creds.pruneSigningKeys(now);
    },

    /**
     * A signed access token for `user` in `session` (the refresh token family, as the `sid` claim:
     * what Logout, reuse detection and a password change end), and when it expires.
     */
    async sign(user: string, session: string): Promise<{ token: string; expireTime: Date }> {
      const key = newest();
      if (!key) throw new Error("no signing key: rotate() was not run");
      const now = o.clock.now();
      const expireTime = new Date(now.getTime() + o.accessTtlMs);
      const token = await new SignJWT({ sid: session })
        .setProtectedHeader({ alg: ALG, kid: key.kid, typ: "JWT" })
        .setSubject(user)
        .setIssuer(o.issuer)
        .setAudience(o.audience)
        .setIssuedAt(Math.floor(now.getTime() / 1000))
        .setNotBefore(Math.floor(now.getTime() / 1000))
        .setExpirationTime(Math.floor(expireTime.getTime() / 1000))
        .setJti(randomUUID())
        .sign(key.privateKey!);
      return { token, expireTime };
    },

    /**
     * The user and session a token was issued to; TokenRejectedError (UNAUTHENTICATED) with the
     * reason otherwise. Whether the session has ended is the caller's check (SessionRevocations).
     */
    async verify(token: string): Promise<{ user: string; session: string }> {
      const getKey = async (header: JWTHeaderParameters) => {
        let key = header.kid ? keys.get(header.kid) : undefined;
        // A key made by another replica since the last load: reload, at most once a second.
        if (!key && header.kid && o.clock.now().getTime() - lastReload > 1000) {
          await reload();
          key = keys.get(header.kid);
        }
        if (!key && header.kid && refused.has(header.kid)) throw new TokenRejectedError("signed by a refused key");
        if (!key) throw new TokenRejectedError("signed by an unknown key");
        return key.publicKey;
      };
      try {
        const { payload } = await jwtVerify(token, getKey, {
          algorithms: [ALG],
          issuer: o.issuer,
          audience: o.audience,
          clockTolerance: tolerance,
          currentDate: o.clock.now(),
          // A token without `sid` (issued before sessions were tracked) cannot be ended: refused.
          requiredClaims: ["sub", "exp", "iat", "nbf", "sid"],
        });
        if (typeof payload.sid !== "string" || payload.sid === "") throw new TokenRejectedError("claim sid is wrong");
        return { user: payload.sub!, session: payload.sid };
      } catch (err) {
        throw new TokenRejectedError(reasonOf(err));
      }
    },
  };
}

function reasonOf(err: unknown): string {
  if (err instanceof TokenRejectedError) return err.reason;
  if (err instanceof errors.JWTExpired) return "expired";
  if (err instanceof errors.JWTClaimValidationFailed)
    return `claim ${err.claim} ${err.reason === "check_failed" ? "is wrong" : err.reason.replaceAll("_", " ")}`;
  if (err instanceof errors.JOSEAlgNotAllowed) return "algorithm not allowed";
  if (err instanceof errors.JWSSignatureVerificationFailed) return "bad signature";
  if (err instanceof errors.JOSENotSupported) return "algorithm not supported";
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) return "malformed";
  return "malformed";
}
