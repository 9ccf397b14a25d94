import type { GroupRecord, UserRecord, UserRepository } from "../core/ports/auth.js";
import { AlreadyExistsError, FailedPreconditionError } from "../core/errors.js";
import type { Sql } from "./database.js";
import { auditedChange, type TxSql, withTransaction } from "./transaction.js";
import { auditCall } from "./audit-context.js";
import { apiKeySession } from "../core/auth/session-revocations.js";

/** `apiKeySession(id)` is this prefix + the id; the SQL builds it from the column. */
const API_KEY_SESSION_PREFIX = apiKeySession("");

interface UserRow {
  name: string;
  display_name: string;
  admin: boolean;
  password_hash: string | null;
  create_time: Date;
  groups: string[] | null;
}

const fromUser = (r: UserRow): UserRecord => ({
  name: r.name,
  displayName: r.display_name,
  admin: r.admin,
  passwordHash: r.password_hash,
  groups: r.groups ?? [],
  createTime: r.create_time,
});

/**
 * Revokes every refresh token of the user and records each session (family) that had one as
 * ended, in one statement of the caller's transaction; returns the sessions newly ended. A
 * session's last refresh token outlives its access tokens (config requires
 * TETHER_REFRESH_TOKEN_TTL_S >= TETHER_ACCESS_TOKEN_TTL_S), so every session with a live access
 * token is found. One statement: a family created meanwhile is either revoked and recorded, or neither.
 */
async function endSessionsOf(tx: TxSql, user: string, now: Date): Promise<string[]> {
  const rows = await tx<Array<{ session: string }>>`
    WITH revoked AS (
      UPDATE refresh_tokens SET revoked = true WHERE user_name = ${user} AND NOT revoked RETURNING family
    )
    INSERT INTO session_revocations (session, user_name, revoke_time)
    SELECT DISTINCT family, ${user}, ${now}::timestamptz FROM revoked
    ON CONFLICT (session) DO NOTHING
    RETURNING session`;
  return rows.map((r) => r.session);
}

/** Revokes the user's API keys and records each key's session as ended (streams opened with it end); returns those sessions. */
async function revokeApiKeysOf(tx: TxSql, user: string, now: Date): Promise<string[]> {
  const rows = await tx<Array<{ session: string }>>`
    WITH revoked AS (
      UPDATE api_keys SET revoke_time = ${now} WHERE user_name = ${user} AND revoke_time IS NULL RETURNING id
    )
    INSERT INTO session_revocations (session, user_name, revoke_time)
    SELECT ${API_KEY_SESSION_PREFIX} || id, ${user}, ${now}::timestamptz FROM revoked
    ON CONFLICT (session) DO NOTHING
    RETURNING session`;
  return rows.map((r) => r.session);
}

/** UserRepository on PostgreSQL/PGlite. */
export function createUserStore(sql: Sql): UserRepository {
  const selectUsers = sql`
    SELECT u.*, ARRAY(SELECT group_name FROM group_members m WHERE m.user_name = u.name ORDER BY group_name) AS groups
    FROM users u`;
  const selectGroups = sql`
    SELECT g.*, ARRAY(SELECT user_name FROM group_members m WHERE m.group_name = g.name ORDER BY user_name) AS members
    FROM groups g`;
  const fromGroup = (r: { name: string; display_name: string; members: string[] | null }): GroupRecord => ({
    name: r.name,
    displayName: r.display_name,
    members: r.members ?? [],
  });

  return {
    async insertUser(u) {
      const rows = await auditedChange(
        sql,
        (q) => q`
        INSERT INTO users (name, display_name, admin, password_hash, create_time, update_time)
        VALUES (${u.name}, ${u.displayName}, ${u.admin}, ${u.passwordHash}, ${u.createTime}, ${u.createTime})
        ON CONFLICT (name) DO NOTHING RETURNING name`,
        { changed: (r) => r.length > 0, resource: () => `users/${u.name}` },
      );
      if (rows.length === 0) throw new AlreadyExistsError(`users/${u.name}`);
      return { ...u, groups: [] };
    },

    async ensureUser(u) {
      const rows = await sql`
        INSERT INTO users (name, display_name, admin, password_hash, create_time, update_time)
        VALUES (${u.name}, ${u.displayName}, ${u.admin}, ${u.passwordHash}, ${u.createTime}, ${u.createTime})
        ON CONFLICT (name) DO NOTHING RETURNING name`;
      return rows.length > 0;
    },

    async getUser(name) {
      const [row] = await sql<UserRow[]>`${selectUsers} WHERE u.name = ${name}`;
      return row ? fromUser(row) : undefined;
    },

    async listUsers({ afterName, limit }) {
      const rows = await sql<
        UserRow[]
      >`${selectUsers} WHERE ${afterName !== undefined ? sql`u.name > ${afterName}` : sql`true`} ORDER BY u.name LIMIT ${limit}`;
      return rows.map(fromUser);
    },

    async deleteUser(name, now) {
      return withTransaction(sql, async (tx) => {
        // Devices name their owner by user name: deleting an owner would hand the devices to
        // whoever registers that name next. The devices move first (UpdateDevice owner).
        const [{ owned }] = await tx<{ owned: number }[]>`SELECT count(*)::int AS owned FROM devices WHERE owner = ${name}`;
        if (owned > 0)
          throw new FailedPreconditionError(
            `user ${name} still owns ${owned} device${owned === 1 ? "" : "s"}: give ${owned === 1 ? "it" : "them"} another owner first (UpdateDevice with update_mask owner)`,
          );
        const sessions = [...(await endSessionsOf(tx, name, now)), ...(await revokeApiKeysOf(tx, name, now))];
        await tx`DELETE FROM grants WHERE principal_kind = 'user' AND principal = ${name}`;
        const rows = await tx`DELETE FROM users WHERE name = ${name} RETURNING name`;
        if (rows.length > 0) auditCall(tx);
        return rows.length > 0 ? sessions : undefined;
      });
    },

    async setPasswordHash(name, hash, now, opts = {}) {
      return withTransaction(sql, async (tx) => {
        const rows = await tx`UPDATE users SET password_hash = ${hash}, update_time = ${now} WHERE name = ${name} RETURNING name`;
        if (rows.length === 0) return undefined;
        auditCall(tx);
        // A new password ends every session: whoever knew the old one keeps nothing.
        const sessions = await endSessionsOf(tx, name, now);
        return opts.revokeApiKeys ? [...sessions, ...(await revokeApiKeysOf(tx, name, now))] : sessions;
      });
    },

    async insertGroup(g) {
      const rows = await auditedChange(
        sql,
        (q) =>
          q`INSERT INTO groups (name, display_name, create_time) VALUES (${g.name}, ${g.displayName}, ${g.createTime}) ON CONFLICT (name) DO NOTHING RETURNING name`,
        { changed: (r) => r.length > 0, resource: () => `groups/${g.name}` },
      );
      if (rows.length === 0) throw new AlreadyExistsError(`groups/${g.name}`);
      return { name: g.name, displayName: g.displayName, members: [] };
    },

    async getGroup(name) {
      const [row] = await sql<Array<{ name: string; display_name: string; members: string[] }>>`${selectGroups} WHERE g.name = ${name}`;
      return row ? fromGroup(row) : undefined;
    },

    async listGroups({ afterName, limit }) {
      const rows = await sql<Array<{ name: string; display_name: string; members: string[] }>>`
        ${selectGroups} WHERE ${afterName !== undefined ? sql`g.name > ${afterName}` : sql`true`} ORDER BY g.name LIMIT ${limit}`;
      return rows.map(fromGroup);
    },

    async deleteGroup(name) {
      return withTransaction(sql, async (tx) => {
        await tx`DELETE FROM grants WHERE principal_kind = 'group' AND principal = ${name}`;
        const rows = await tx`DELETE FROM groups WHERE name = ${name} RETURNING name`;
        if (rows.length > 0) auditCall(tx);
        return rows.length > 0;
      });
    },

    async addMember(group, user) {
      await auditedChange(sql, (q) => q`INSERT INTO group_members (group_name, user_name) VALUES (${group}, ${user}) ON CONFLICT DO NOTHING`, {
        changed: (r) => r.count > 0,
        resource: () => `groups/${group}`,
      });
    },

    async removeMember(group, user) {
      await auditedChange(sql, (q) => q`DELETE FROM group_members WHERE group_name = ${group} AND user_name = ${user}`, {
        changed: (r) => r.count > 0,
        resource: () => `groups/${group}`,
      });
    },
  };
}
