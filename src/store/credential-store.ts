import type { ApiKeyRecord, CredentialRepository, SigningKey } from "../core/ports/auth.js";
import { apiKeySession } from "../core/auth/session-revocations.js";
import type { Sql } from "./database.js";
import { auditedChange, type TxSql, withTransaction } from "./transaction.js";
import { auditCall } from "./audit-context.js";

interface KeyRow {
  kid: string;
  algorithm: string;
  private_jwk: Record<string, unknown>;
  public_jwk: Record<string, unknown>;
  create_time: Date;
  retire_time: Date;
  expire_time: Date;
}

interface ApiKeyRow {
  id: string;
  user_name: string;
  display_name: string;
  create_time: Date;
  expire_time: Date | null;
  last_used_time: Date | null;
}

const fromKey = (r: ApiKeyRow): ApiKeyRecord => ({
  id: r.id,
  user: r.user_name,
  displayName: r.display_name,
  createTime: r.create_time,
  expireTime: r.expire_time ?? undefined,
  lastUsedTime: r.last_used_time ?? undefined,
});

/**
 * Records a session (a refresh-token family, or `apiKeySession(id)`) as ended: its access tokens are
 * refused and its streams end on every replica (SessionRevocations).
 */
async function recordEndedSession(tx: TxSql, ended: { session: string; user: string }, now: Date): Promise<void> {
  await tx`
    INSERT INTO session_revocations (session, user_name, revoke_time) VALUES (${ended.session}, ${ended.user}, ${now})
    ON CONFLICT (session) DO NOTHING`;
}

/** CredentialRepository on PostgreSQL/PGlite: refresh tokens, ended sessions, API keys, signing keys. */
export function createCredentialStore(sql: Sql): CredentialRepository {
  return {
    async insertRefreshToken(t) {
      await sql`
        INSERT INTO refresh_tokens (token_hash, family, user_name, create_time, expire_time)
        VALUES (${t.hash}, ${t.family}, ${t.user}, ${t.createTime}, ${t.expireTime})`;
    },

    async rotateRefreshToken(hash, next, now) {
      return withTransaction(sql, async (tx) => {
        // FOR UPDATE: two concurrent refreshes with one token cannot both succeed.
        const [row] = await tx<Array<{ family: string; user_name: string; expire_time: Date; used_time: Date | null; revoked: boolean }>>`
          SELECT family, user_name, expire_time, used_time, revoked FROM refresh_tokens WHERE token_hash = ${hash} FOR UPDATE`;
        if (!row) return { outcome: "unknown" as const };
        if (row.used_time !== null || row.revoked) {
          await tx`UPDATE refresh_tokens SET revoked = true WHERE family = ${row.family}`;
          await recordEndedSession(tx, { session: row.family, user: row.user_name }, now);
          return { outcome: "reused" as const, user: row.user_name, family: row.family };
        }
        if (row.expire_time.getTime() <= now.getTime()) return { outcome: "expired" as const };
        await tx`UPDATE refresh_tokens SET used_time = ${now} WHERE token_hash = ${hash}`;
        await tx`
          INSERT INTO refresh_tokens (token_hash, family, user_name, create_time, expire_time)
          VALUES (${next.hash}, ${row.family}, ${row.user_name}, ${next.createTime}, ${next.expireTime})`;
        // Expired tokens of this user are of no further use (reuse of an expired one is refused anyway).
        await tx`DELETE FROM refresh_tokens WHERE user_name = ${row.user_name} AND expire_time < ${now}`;
        return { outcome: "rotated" as const, user: row.user_name, family: row.family };
      });
    },

    async revokeFamilyOf(hash, now) {
      return withTransaction(sql, async (tx) => {
        const rows = await tx<Array<{ user_name: string; family: string }>>`
          UPDATE refresh_tokens SET revoked = true
          WHERE family = (SELECT family FROM refresh_tokens WHERE token_hash = ${hash})
          RETURNING user_name, family`;
        const row = rows[0];
        if (!row) return undefined;
        await recordEndedSession(tx, { session: row.family, user: row.user_name }, now);
        return { user: row.user_name, family: row.family };
      });
    },

    async revokedSessions(since) {
      const rows = await sql<Array<{ session: string }>>`SELECT session FROM session_revocations WHERE revoke_time >= ${since}`;
      return rows.map((r) => r.session);
    },

    async pruneRevokedSessions(before) {
      await sql`DELETE FROM session_revocations WHERE revoke_time < ${before}`;
    },

    async insertApiKey(k) {
      await auditedChange(
        sql,
        (q) => q`
        INSERT INTO api_keys (id, user_name, display_name, secret_hash, create_time, expire_time)
        VALUES (${k.id}, ${k.user}, ${k.displayName}, ${k.secretHash}, ${k.createTime}, ${k.expireTime ?? null})`,
        { changed: () => true, resource: () => `users/${k.user}/apiKeys/${k.id}` },
      );
    },

    async useApiKey(secretHash, now) {
      const [row] = await sql<ApiKeyRow[]>`SELECT * FROM api_keys WHERE secret_hash = ${secretHash} AND revoke_time IS NULL`;
      if (!row) return undefined;
      if (row.expire_time && row.expire_time.getTime() <= now.getTime()) return fromKey(row);
      // At most one write a minute per key, not one per call.
      if (!row.last_used_time || now.getTime() - row.last_used_time.getTime() > 60_000) {
        await sql`UPDATE api_keys SET last_used_time = ${now} WHERE id = ${row.id}`;
        row.last_used_time = now;
      }
      return fromKey(row);
    },

    async listApiKeys(user) {
      const rows = await sql<ApiKeyRow[]>`SELECT * FROM api_keys WHERE user_name = ${user} AND revoke_time IS NULL ORDER BY create_time, id`;
      return rows.map(fromKey);
    },

    async revokeApiKey(user, id, now) {
      return withTransaction(sql, async (tx) => {
        const rows = await tx`UPDATE api_keys SET revoke_time = ${now} WHERE id = ${id} AND user_name = ${user} AND revoke_time IS NULL RETURNING id`;
        if (rows.length === 0) return false;
        auditCall(tx);
        await recordEndedSession(tx, { session: apiKeySession(id), user }, now);
        return true;
      });
    },

    async signingKeys(now) {
      const rows = await sql<KeyRow[]>`SELECT * FROM signing_keys WHERE expire_time > ${now} ORDER BY create_time`;
      return rows.map(
        (r): SigningKey => ({
          kid: r.kid,
          algorithm: r.algorithm,
          privateJwk: r.private_jwk,
          publicJwk: r.public_jwk,
          createTime: r.create_time,
          retireTime: r.retire_time,
          expireTime: r.expire_time,
        }),
      );
    },

    async insertSigningKey(k) {
      await sql`
        INSERT INTO signing_keys (kid, algorithm, private_jwk, public_jwk, create_time, retire_time, expire_time)
        VALUES (${k.kid}, ${k.algorithm}, ${sql.json(k.privateJwk as never)}, ${sql.json(k.publicJwk as never)}, ${k.createTime}, ${k.retireTime}, ${k.expireTime})`;
    },

    async pruneSigningKeys(now) {
      await sql`DELETE FROM signing_keys WHERE expire_time <= ${now}`;
    },
  };
}
