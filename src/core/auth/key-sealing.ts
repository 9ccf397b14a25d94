import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";

/** A private JWK as stored: sealed with AES-256-GCM, or plain when no secret is configured. */
export type StoredPrivateJwk = Record<string, unknown>;

/**
 * Seals signing keys at rest with a key derived (HKDF-SHA256) from a configured secret, so a
 * database dump alone cannot mint tokens. Every replica needs the same secret. Without one, keys
 * are stored as plain JWKs (still never returned by any API).
 */
export function createKeySealer(secret: string | undefined) {
  const key = secret ? Buffer.from(hkdfSync("sha256", secret, "tether", "jwt-signing-key", 32)) : undefined;
  /** The JWK, or undefined when it is sealed with another secret (or sealed and no secret is set). */
  function open(stored: StoredPrivateJwk): Record<string, unknown> | undefined {
    if (stored.sealed === undefined) return stored;
    if (!key || stored.sealed !== "A256GCM") return undefined;
    try {
      const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(String(stored.iv), "base64"));
      decipher.setAuthTag(Buffer.from(String(stored.tag), "base64"));
      const plain = Buffer.concat([decipher.update(Buffer.from(String(stored.data), "base64")), decipher.final()]);
      return JSON.parse(plain.toString("utf8")) as Record<string, unknown>;
    } catch {
      return undefined;
    }
  }

  return {
    sealed: key !== undefined,
    seal(jwk: Record<string, unknown>): StoredPrivateJwk {
      if (!key) return jwk;
      const iv = randomBytes(12);
      const cipher = createCipheriv("aes-256-gcm", key, iv);
      const data = Buffer.concat([cipher.update(JSON.stringify(jwk), "utf8"), cipher.final()]);
      return { sealed: "A256GCM", iv: iv.toString("base64"), tag: cipher.getAuthTag().toString("base64"), data: data.toString("base64") };
    },
    /**
     * Whether a stored key may be used at all. With a secret, only a key this secret sealed, whose
     * public half matches its sealed private half, is Tether's own: an unsealed row, or one sealed
     * with another secret, was written before the secret was set or by someone who could write to
     * the database, and whoever wrote it may hold its private key. Without a secret there is no
     * way to tell, and every key is used as stored.
     */
    check(stored: StoredPrivateJwk, publicJwk: Record<string, unknown>): { ok: true } | { ok: false; reason: string } {
      if (!key) return { ok: true };
      if (stored.sealed === undefined) return { ok: false, reason: "stored unsealed although TETHER_SIGNING_KEY_SECRET is set" };
      const jwk = open(stored);
      if (!jwk) return { ok: false, reason: "not sealed with this TETHER_SIGNING_KEY_SECRET" };
      if (jwk.x !== publicJwk.x || jwk.y !== publicJwk.y) return { ok: false, reason: "its public key is not the one sealed with it" };
      return { ok: true };
    },
    open,
  };
}

const TEXT_PREFIX = "sealed:A256GCM:";

/**
 * Seals short text secrets at rest (webhook signing secrets) with a key derived from the same
 * configured secret as the signing keys, but for its own `purpose` (HKDF info), so one sealed
 * value never opens as another kind. Stored as `sealed:A256GCM:<iv>:<tag>:<data>`; a value without
 * that prefix was stored before a secret was configured and is read as it is.
 */
export function createTextSealer(secret: string | undefined, purpose: string) {
  const key = secret ? Buffer.from(hkdfSync("sha256", secret, "tether", purpose, 32)) : undefined;
  return {
    seal(plain: string): string {
      if (!key) return plain;
      const iv = randomBytes(12);
      const cipher = createCipheriv("aes-256-gcm", key, iv);
      const data = Buffer.concat([cipher.update(plain, "utf8"), cipher.final()]);
      return `${TEXT_PREFIX}${iv.toString("base64")}:${cipher.getAuthTag().toString("base64")}:${data.toString("base64")}`;
    },
    /** The plain text, or undefined when it is sealed with another secret (or sealed and no secret is set). */
    open(stored: string): string | undefined {
      if (!stored.startsWith(TEXT_PREFIX)) return stored;
      const [iv, tag, data] = stored.slice(TEXT_PREFIX.length).split(":");
      if (!key || iv === undefined || tag === undefined || data === undefined) return undefined;
      try {
        const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(iv, "base64"));
        decipher.setAuthTag(Buffer.from(tag, "base64"));
        return Buffer.concat([decipher.update(Buffer.from(data, "base64")), decipher.final()]).toString("utf8");
      } catch {
        return undefined;
      }
    },
  };
}

export type TextSealer = ReturnType<typeof createTextSealer>;
