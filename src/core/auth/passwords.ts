import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";

/** scrypt cost: N=2^15, r=8, p=1 (~50 ms, 32 MiB on this hardware class); stored with each hash. */
const N = 32768;
const R = 8;
const P = 1;
const KEY_LENGTH = 32;

function derive(password: string, salt: Buffer, n: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password.normalize("NFC"), salt, KEY_LENGTH, { N: n, r, p, maxmem: 256 * n * r }, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

/** `scrypt$N$r$p$salt$hash` (base64) with a fresh 16-byte salt; the parameters travel with the hash. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, N, R, P);
  return `scrypt$${N}$${R}$${P}$${salt.toString("base64")}$${key.toString("base64")}`;
}

/** A hash of nothing in particular, verified against when the user does not exist so both cases cost the same. */
const DUMMY = "scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

/** Constant-time check of `password` against a stored hash; undefined `stored` always fails (after the same work). */
export async function verifyPassword(password: string, stored: string | null | undefined): Promise<boolean> {
  const parts = (stored ?? DUMMY).split("$");
  if (parts.length !== 6 || parts[0] !== "scrypt") return false;
  const [n, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  const expected = Buffer.from(parts[5]!, "base64");
  const key = await derive(password, Buffer.from(parts[4]!, "base64"), n, r, p);
  return stored != null && key.length === expected.length && timingSafeEqual(key, expected);
}

/** At least 8 characters; at most 1024 (scrypt cost does not grow with length, but requests should be bounded). */
export function passwordProblem(password: string): string | undefined {
  if (password.length < 8) return "must be at least 8 characters";
  if (password.length > 1024) return "must be at most 1024 characters";
  return undefined;
}
