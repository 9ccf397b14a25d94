import type { DeviceMeta } from "../core/access/selector.js";
import type { UserRights } from "../core/ports/rights.js";
import type { Role } from "../core/access/roles.js";
import { creatorCheck, creatorUsers } from "../core/access/creator-rights.js";
import type { Sql } from "./database.js";
import type { TxSql } from "./transaction.js";

interface Row {
  name: string;
  exists: boolean;
  admin: boolean;
  groups: string[];
  grants: Array<{ target_kind: "device" | "selector"; target: string; role: Role }> | null;
}

/**
 * The rights of several users in ONE query, on the caller's transaction (a firing or a rollout
 * step), whatever the number of users or devices. Device shares are limited to `deviceIds`;
 * selector shares are few per user and matched in memory, as for API calls.
 */
export async function loadCreatorRights(db: Sql | TxSql, users: string[], deviceIds: string[]): Promise<Map<string, UserRights>> {
  const out = new Map<string, UserRights>();
  if (users.length === 0) return out;
  const rows = await db<Row[]>`
    SELECT u.name,
           x.name IS NOT NULL AS exists,
           COALESCE(x.admin, false) AS admin,
           ARRAY(SELECT m.group_name FROM group_members m WHERE m.user_name = u.name ORDER BY m.group_name) AS groups,
           (SELECT json_agg(json_build_object('target_kind', g.target_kind, 'target', g.target, 'role', g.role))
              FROM grants g
             WHERE ((g.principal_kind = 'user' AND g.principal = u.name)
                 OR (g.principal_kind = 'group' AND g.principal IN (SELECT m.group_name FROM group_members m WHERE m.user_name = u.name)))
               AND (g.target_kind = 'selector' OR g.target = ANY(${deviceIds}::text[]))) AS grants
    FROM unnest(${users}::text[]) AS u(name)
    LEFT JOIN users x ON x.name = u.name`;
  for (const r of rows) {
    out.set(r.name, {
      exists: r.exists,
      admin: r.admin,
      groups: r.groups ?? [],
      grants: (r.grants ?? []).map((g) => ({ targetKind: g.target_kind, target: g.target, role: g.role })),
    });
  }
  return out;
}

/** A device row as the firing and rollout queries lock it, reduced to what rights need. */
export function deviceMetaOfRow(r: Record<string, unknown>): DeviceMeta {
  return { id: String(r.id), kind: String(r.kind), labels: (r.labels ?? {}) as Record<string, string>, owner: String(r.owner ?? "") };
}

/**
 * Loads the creators' rights for a batch and returns the check (see core/access/creator-rights.ts):
 * one query for the batch when a creator is a user, none when every creator is a service.
 */
export async function creatorRightsFor(db: Sql | TxSql, creators: Iterable<string>, deviceIds: string[]) {
  return creatorCheck(await loadCreatorRights(db, creatorUsers(creators), deviceIds));
}
