import { createHmac, timingSafeEqual } from "node:crypto";

/** The header that carries the signatures (documented in webhook.proto and the README). */
export const SIGNATURE_HEADER = "tether-signature";

/** HMAC-SHA256(secret, `${t}.${body}`) as hex: the receiver recomputes it over the exact bytes. */
export function signatureOf(secret: string, timestampSeconds: number, body: Uint8Array): string {
  return createHmac("sha256", secret).update(`${timestampSeconds}.`).update(body).digest("hex");
}

/** `t=…,v1=…[,v1=…]`: one `v1` per valid secret (two during a rotation), newest first. */
export function signatureHeader(secrets: readonly string[], timestampSeconds: number, body: Uint8Array): string {
  return [`t=${timestampSeconds}`, ...secrets.map((s) => `v1=${signatureOf(s, timestampSeconds, body)}`)].join(",");
}

/**
 * What a receiver does (exported for tests and as the reference for integrators): parse the
 * header, refuse a timestamp more than `toleranceSeconds` from now (a replayed request), and
 * accept if any `v1` matches, compared in constant time.
 */
export function verifySignature(header: string, secret: string, body: Uint8Array, nowSeconds: number, toleranceSeconds = 300): boolean {
  let t: number | undefined;
  const sigs: string[] = [];
  for (const part of header.split(",")) {
    const [k, v] = part.split("=", 2);
    if (k === "t" && v && /^\d+$/.test(v)) t = Number(v);
    else if (k === "v1" && v && /^[0-9a-f]{64}$/.test(v)) sigs.push(v);
  }
  if (t === undefined || Math.abs(nowSeconds - t) > toleranceSeconds) return false;
  const want = Buffer.from(signatureOf(secret, t, body), "hex");
  return sigs.some((s) => timingSafeEqual(Buffer.from(s, "hex"), want));
}
