import { exportJWK, generateKeyPair, importJWK, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import type { CredentialRepository, SigningKey } from "../../src/core/ports/auth.js";
import { createTokenIssuer, TokenRejectedError } from "../../src/core/auth/tokens.js";
import { fakeClock } from "../helpers/fake-clock.js";

const silent = { debug() {}, info() {}, warn() {}, error() {} };
const MIN = 60_000;
const SID = "6f1c1c57-2a53-4d1e-9a39-2f7f6c1e0b11";

/** Only the signing-key part of the port is used by the issuer; an in-memory table stands in for it. */
function keyTable() {
  const keys: SigningKey[] = [];
  const creds = {
    signingKeys: async (now: Date) => keys.filter((k) => k.expireTime > now),
    insertSigningKey: async (k: SigningKey) => void keys.push(k),
    pruneSigningKeys: async (now: Date) => void keys.splice(0, keys.length, ...keys.filter((k) => k.expireTime > now)),
  } as unknown as CredentialRepository;
  return { keys, creds };
}

function setup(overrides: { issuer?: string; audience?: string; keySecret?: string } = {}, table = keyTable(), clock = fakeClock("2026-01-01T00:00:00Z")) {
  const issuer = createTokenIssuer({
    creds: table.creds,
    clock,
    log: silent,
    issuer: "tether",
    audience: "tether-api",
    accessTtlMs: 15 * MIN,
    rotateMs: 10 * MIN,
    clockToleranceS: 30,
    ...overrides,
  });
  return { issuer, clock, table };
}

async function reason(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TokenRejectedError);
  return (err as TokenRejectedError).reason;
}

const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
const parts = (t: string) => t.split(".") as [string, string, string];
const decode = (seg: string) => JSON.parse(Buffer.from(seg, "base64url").toString()) as Record<string, unknown>;

describe("access tokens", () => {
  it("issues ES256 tokens that verify, with iss, aud, exp, nbf, iat, jti, sid (the session) and kid", async () => {
    const { issuer } = setup();
    await issuer.rotate();
    const { token } = await issuer.sign("alice", SID);
    expect(await issuer.verify(token)).toEqual({ user: "alice", session: SID });
    const [h, p] = parts(token);
    expect(decode(h)).toMatchObject({ alg: "ES256", typ: "JWT" });
    expect(Object.keys(decode(p)).sort()).toEqual(["aud", "exp", "iat", "iss", "jti", "nbf", "sid", "sub"]);
  });

  it("refuses expired and not-yet-valid tokens, beyond a 30 s tolerance", async () => {
    const { issuer, clock } = setup();
    await issuer.rotate();
    const { token } = await issuer.sign("alice", SID);
    clock.advance(15 * MIN + 20_000);
    expect(await issuer.verify(token)).toEqual({ user: "alice", session: SID }); // within tolerance
    clock.advance(20_000);
    expect(await reason(issuer.verify(token))).toBe("expired");
    clock.advance(-20 * MIN); // 5 min before issue
    expect(await reason(issuer.verify(token))).toBe("claim nbf is wrong");
  });

  it("refuses alg=none, HS256 keyed with the public key, and tampered tokens", async () => {
    const { issuer, table } = setup();
    await issuer.rotate();
    const { token } = await issuer.sign("alice", SID);
    const [h, p, sig] = parts(token);
    const kid = decode(h).kid as string;
    const claims = decode(p);
    const none = `${b64({ alg: "none", typ: "JWT", kid })}.${b64({ ...claims, sub: "admin" })}.`;
    expect(await reason(issuer.verify(none))).toMatch(/algorithm not allowed|malformed/);
    const publicJwk = table.keys[0]!.publicJwk;
    const hs = await new SignJWT({ ...claims, sub: "admin" })
      .setProtectedHeader({ alg: "HS256", kid })
      .sign(new TextEncoder().encode(JSON.stringify(publicJwk)));
    expect(await reason(issuer.verify(hs))).toBe("algorithm not allowed");
    const tampered = `${h}.${b64({ ...claims, sub: "admin" })}.${sig}`;
    expect(await reason(issuer.verify(tampered))).toBe("bad signature");
    expect(await reason(issuer.verify(`${h}.${p}.${sig.slice(0, -4)}AAAA`))).toBe("bad signature");
    expect(await reason(issuer.verify("not-a-jwt"))).toBe("malformed");
  });

  it("refuses tokens signed by foreign keys, for another issuer or another audience", async () => {
    const { issuer, clock, table } = setup();
    await issuer.rotate();
    const kid = table.keys[0]!.kid;
    const foreign = await generateKeyPair("ES256", { extractable: true });
    const now = Math.floor(clock.now().getTime() / 1000);
    const forge = (header: { kid: string }) =>
      new SignJWT({})
        .setProtectedHeader({ alg: "ES256", ...header })
        .setSubject("admin")
        .setIssuer("tether")
        .setAudience("tether-api")
        .setIssuedAt(now)
        .setNotBefore(now)
        .setExpirationTime(now + 600)
        .sign(foreign.privateKey);
    expect(await reason(issuer.verify(await forge({ kid })))).toBe("bad signature");
    expect(await reason(issuer.verify(await forge({ kid: "made-up" })))).toBe("signed by an unknown key");
    expect((await exportJWK(foreign.publicKey)).kty).toBe("EC");
    // Same keys (shared table), other iss / aud: the signature is fine, the claims are not.
    const other = setup({ issuer: "someone-else" }, table, clock).issuer;
    await other.rotate();
    expect(await reason(issuer.verify((await other.sign("alice", SID)).token))).toBe("claim iss is wrong");
    const otherAud = setup({ audience: "other-api" }, table, clock).issuer;
    await otherAud.rotate();
    expect(await reason(issuer.verify((await otherAud.sign("alice", SID)).token))).toBe("claim aud is wrong");
  });

  it("refuses a token without a session (sid), even when signed with our own key", async () => {
    const { issuer, clock, table } = setup();
    await issuer.rotate();
    const key = table.keys[0]!;
    const own = await importJWK(key.privateJwk as Parameters<typeof importJWK>[0], "ES256");
    const now = Math.floor(clock.now().getTime() / 1000);
    const claims = (extra: object) =>
      new SignJWT({ ...extra })
        .setProtectedHeader({ alg: "ES256", kid: key.kid })
        .setSubject("alice")
        .setIssuer("tether")
        .setAudience("tether-api")
        .setIssuedAt(now)
        .setNotBefore(now)
        .setExpirationTime(now + 600)
        .sign(own);
    expect((await issuer.verify(await claims({ sid: SID }))).session).toBe(SID); // the forge is right
    expect(await reason(issuer.verify(await claims({})))).toBe("claim sid missing");
    expect(await reason(issuer.verify(await claims({ sid: "" })))).toBe("claim sid is wrong");
    expect(await reason(issuer.verify(await claims({ sid: 7 })))).toBe("claim sid is wrong");
  });

  it("rotates signing keys; tokens of the previous key verify until it expires, then it is deleted", async () => {
    const { issuer, clock, table } = setup();
    await issuer.rotate();
    const first = await issuer.sign("alice", SID);
    clock.advance(5 * MIN);
    await issuer.rotate(); // not due yet
    expect(table.keys).toHaveLength(1);
    clock.advance(6 * MIN);
    await issuer.rotate();
    expect(table.keys).toHaveLength(2);
    const second = await issuer.sign("alice", SID);
    expect(decode(parts(second.token)[0]).kid).not.toBe(decode(parts(first.token)[0]).kid);
    expect((await issuer.verify(first.token)).user).toBe("alice");
    expect((await issuer.verify(second.token)).user).toBe("alice");
    // Another replica (its own cache) verifies both by loading the shared table.
    const replica = setup({}, table, clock).issuer;
    expect((await replica.verify(first.token)).user).toBe("alice");
    // The first key retires at 20 min and expires 15 min 30 s later.
    clock.set(new Date(table.keys[0]!.expireTime.getTime() + 1000));
    await issuer.rotate();
    expect(table.keys.map((k) => k.kid)).not.toContain(decode(parts(first.token)[0]).kid);
  });

  it("seals private keys at rest; a replica with the same secret signs, one with another secret neither signs nor verifies with it", async () => {
    const { issuer, clock, table } = setup({ keySecret: "s3cret" });
    await issuer.rotate();
    const stored = table.keys[0]!.privateJwk;
    expect(stored).toMatchObject({ sealed: "A256GCM" });
    expect(stored).not.toHaveProperty("d");
    expect(JSON.stringify(stored)).not.toContain(String((table.keys[0]!.publicJwk as { x: string }).x));
    const token = (await issuer.sign("alice", SID)).token;
    const same = setup({ keySecret: "s3cret" }, table, clock).issuer;
    await same.rotate();
    expect(table.keys).toHaveLength(1); // it could open the key: no new one
    expect(await issuer.verify((await same.sign("bob", SID)).token)).toEqual({ user: "bob", session: SID });
    const other = setup({ keySecret: "another" }, table, clock).issuer;
    await other.rotate();
    expect(table.keys).toHaveLength(2); // it cannot open the sealed key, so it makes its own
    // A key this secret did not seal may have been written by anyone who could write the table.
    expect(await reason(other.verify(token))).toBe("signed by a refused key");
    expect(await other.verify((await other.sign("bob", SID)).token)).toEqual({ user: "bob", session: SID });
  });

  /** A signing key as someone who can write the database would plant it: their own key pair. */
  async function plantedKey(clock: ReturnType<typeof fakeClock>, privateJwk?: (jwk: Record<string, unknown>) => Record<string, unknown>) {
    const pair = await generateKeyPair("ES256", { extractable: true });
    const jwk = { ...(await exportJWK(pair.privateKey)) };
    const now = clock.now();
    const key: SigningKey = {
      kid: `planted-${Math.random().toString(36).slice(2)}`,
      algorithm: "ES256",
      privateJwk: privateJwk ? privateJwk(jwk) : jwk,
      publicJwk: { ...(await exportJWK(pair.publicKey)) },
      createTime: now,
      retireTime: new Date(now.getTime() + 60 * MIN),
      expireTime: new Date(now.getTime() + 90 * MIN),
    };
    const t = Math.floor(now.getTime() / 1000);
    const token = await new SignJWT({ sid: SID })
      .setProtectedHeader({ alg: "ES256", kid: key.kid, typ: "JWT" })
      .setSubject("admin")
      .setIssuer("tether")
      .setAudience("tether-api")
      .setIssuedAt(t)
      .setNotBefore(t)
      .setExpirationTime(t + 600)
      .sign(pair.privateKey);
    return { key, token };
  }

  it("with a secret set, refuses an unsealed key found in the table: it neither signs nor verifies, a sealed key replaces it", async () => {
    // Written before the secret was configured (or planted): the same row either way.
    const before = setup();
    await before.issuer.rotate();
    const old = await before.issuer.sign("alice", SID);
    const unsealedKid = before.table.keys[0]!.kid;
    const { issuer } = setup({ keySecret: "s3cret" }, before.table, before.clock);
    await issuer.rotate();
    expect(before.table.keys).toHaveLength(2);
    const fresh = before.table.keys.find((k) => k.kid !== unsealedKid)!;
    expect(fresh.privateJwk).toMatchObject({ sealed: "A256GCM" });
    expect(await reason(issuer.verify(old.token))).toBe("signed by a refused key");
    const signed = await issuer.sign("alice", SID);
    expect(decode(parts(signed.token)[0]).kid).toBe(fresh.kid);
    expect((await issuer.verify(signed.token)).user).toBe("alice");
  });

  it("with a secret set, a key planted while running is refused when a token names it, unsealed, forged as sealed, or with a swapped public key", async () => {
    const { issuer, clock, table } = setup({ keySecret: "s3cret" });
    await issuer.rotate();
    const unsealed = await plantedKey(clock);
    const forged = await plantedKey(clock, () => ({ sealed: "A256GCM", iv: "AAAAAAAAAAAAAAAA", tag: "AAAAAAAAAAAAAAAAAAAAAA==", data: "AAAA" }));
    // A genuine sealed private key (copied from Tether's own row) next to the planter's public key.
    const swapped = await plantedKey(clock, () => table.keys[0]!.privateJwk);
    for (const planted of [unsealed, forged, swapped]) {
      table.keys.push(planted.key);
      clock.advance(2000); // past the reload throttle: the unknown kid makes the issuer read the table
      expect(await reason(issuer.verify(planted.token))).toBe("signed by a refused key");
    }
    // Nor does it sign with one of them.
    expect(decode(parts((await issuer.sign("alice", SID)).token)[0]).kid).toBe(table.keys[0]!.kid);
  });

  it("without a secret, keys are used as stored (nothing to check them against)", async () => {
    const { issuer, clock, table } = setup();
    await issuer.rotate();
    const planted = await plantedKey(clock);
    table.keys.push(planted.key);
    clock.advance(2000);
    expect((await issuer.verify(planted.token)).user).toBe("admin");
  });
});
