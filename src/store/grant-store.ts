import { auditedChange } from "./transaction.js";
import type { GrantRecord, GrantRepository } from "../core/ports/auth.js";
import type { RightsRepository } from "../core/ports/rights.js";
import type { Role } from "../core/access/roles.js";
import type { Sql } from "./database.js";

interface GrantRow {
  id: string;
  principal_kind: "user" | "group";
  principal: string;
  target_kind: "device" | "selector";
  target: string;
  role: Role;
  creator: string;
  create_time: Date;
}

const fromRow = (r: GrantRow): GrantRecord => ({
  id: String(r.id),
  principalKind: r.principal_kind,
  principal: r.principal,
  targetKind: r.target_kind,
  target: r.target,
  role: r.role,
  creator: r.creator,
  createTime: r.create_time,
});

/** Grants on PostgreSQL/PGlite, and the rights loader built on them (one round trip per user). */
export function createGrantStore(sql: Sql): GrantRepository & RightsRepository {
  return {
    async upsert(g) {
      const [row] = await auditedChange(
        sql,
        (q) => q<GrantRow[]>`
        INSERT INTO grants (id, principal_kind, principal, target_kind, target, role, creator, create_time)
        VALUES (${g.id}, ${g.principalKind}, ${g.principal}, ${g.targetKind}, ${g.target}, ${g.role}, ${g.creator}, ${g.createTime})
        ON CONFLICT (principal_kind, principal, target_kind, target)
          DO UPDATE SET role = EXCLUDED.role, creator = EXCLUDED.creator, create_time = EXCLUDED.create_time
        RETURNING *`,
        { changed: (r) => r.length > 0, resource: (r) => `grants/${r[0]!.id}` },
      );
      return fromRow(row!);
    },

    async get(id) {
      const [row] = await sql<GrantRow[]>`SELECT * FROM grants WHERE id = ${id}`;
      return row ? fromRow(row) : undefined;
    },

    async list({ afterId, limit, device, visibleTo }) {
      const rows = await sql<GrantRow[]>`
        SELECT * FROM grants
        WHERE ${afterId !== undefined ? sql`id > ${afterId}` : sql`true`}
          AND ${device !== undefined ? sql`target_kind = 'device' AND target = ${device}` : sql`true`}
          AND ${
            visibleTo
              ? sql`((principal_kind = 'user' AND principal = ${visibleTo.user})
                  OR (principal_kind = 'group' AND principal = ANY(${visibleTo.groups}::text[]))
                  OR (target_kind = 'device' AND target IN (SELECT id FROM devices WHERE owner = ${visibleTo.user})))`
              : sql`true`
          }
        ORDER BY id LIMIT ${limit}`;
      return rows.map(fromRow);
    },

    async delete(id) {
      const rows = await auditedChange(sql, (q) => q`DELETE FROM grants WHERE id = ${id} RETURNING id`, { changed: (r) => r.length > 0 });
      return rows.length > 0;
    },

    async load(user) {
      const [row] = await sql<
        Array<{
          exists: boolean;
          admin: boolean | null;
          groups: string[];
          grants: Array<{ target_kind: "device" | "selector"; target: string; role: Role }> | null;
        }>
      >`
        SELECT
          EXISTS (SELECT 1 FROM users WHERE name = ${user}) AS exists,
          (SELECT admin FROM users WHERE name = ${user}) AS admin,
          ARRAY(SELECT group_name FROM group_members WHERE user_name = ${user} ORDER BY group_name) AS groups,
          (SELECT json_agg(json_build_object('target_kind', target_kind, 'target', target, 'role', role))
             FROM grants
            WHERE (principal_kind = 'user' AND principal = ${user})
               OR (principal_kind = 'group' AND principal IN (SELECT group_name FROM group_members WHERE user_name = ${user}))) AS grants`;
      return {
        exists: row!.exists,
        admin: row!.admin ?? false,
        groups: row!.groups,
        grants: (row!.grants ?? []).map((g) => ({ targetKind: g.target_kind, target: g.target, role: g.role })),
      };
    },
  };
}
