import { createHash, randomBytes } from "node:crypto";

/** A high-entropy opaque secret: `prefix` + 32 random bytes, base64url. */
export function newSecret(prefix: string): string {
  return prefix + randomBytes(32).toString("base64url");
}

/** SHA-256 hex: enough for 256-bit random secrets (no brute force to slow down), and indexable. */
export function secretHash(secret: string): string {
  return createHash("sha256").update(secret).digest("hex");
}

/** API keys are recognisable by their prefix (and by secret scanners). */
export const API_KEY_PREFIX = "tether_";
/** Refresh tokens have their own prefix so one is never mistaken for an API key. */
export const REFRESH_PREFIX = "tetherrt_";
