import type { Role } from "../access/roles.js";

export interface UserRecord {
  name: string;
  displayName: string;
  admin: boolean;
  /** scrypt hash, or null when password login is off. Never leaves the core. */
  passwordHash: string | null;
  groups: string[];
  createTime: Date;
}

export interface GroupRecord {
  name: string;
  displayName: string;
  members: string[];
}

export interface ApiKeyRecord {
  id: string;
  user: string;
  displayName: string;
  createTime: Date;
  /** Refused from this time on; undefined: never expires. */
  expireTime?: Date;
  /** Last call it authenticated (recorded at most once a minute). */
  lastUsedTime?: Date;
}

export interface GrantRecord {
  id: string;
  principalKind: "user" | "group";
  principal: string;
  targetKind: "device" | "selector";
  target: string;
  role: Role;
  creator: string;
  createTime: Date;
}

/** An ES256 key pair as JWKs; the private half never leaves the token issuer. */
export interface SigningKey {
  kid: string;
  algorithm: string;
  privateJwk: Record<string, unknown>;
  publicJwk: Record<string, unknown>;
  createTime: Date;
  retireTime: Date;
  expireTime: Date;
}

/** Users, groups and memberships (PostgreSQL adapter: `src/store/user-store.ts`). */
export interface UserRepository {
  /** AlreadyExistsError if taken. */
  insertUser(u: Omit<UserRecord, "groups">): Promise<UserRecord>;
  /** Creates the user only if absent; returns whether it did. */
  ensureUser(u: Omit<UserRecord, "groups">): Promise<boolean>;
  getUser(name: string): Promise<UserRecord | undefined>;
  listUsers(q: { afterName?: string; limit: number }): Promise<UserRecord[]>;
  /**
   * Deletes the user with their keys, tokens, memberships and grants, recording their sessions and
   * keys as ended (a re-created user of the same name must not inherit them); returns those
   * sessions, or undefined if absent.
   */
  deleteUser(name: string, now: Date): Promise<string[] | undefined>;
  /**
   * In one transaction: sets the hash, revokes the user's refresh tokens and records every session
   * of theirs as ended (`session_revocations`), and with `revokeApiKeys` revokes their API keys
   * (recording each key's session). Returns the sessions ended, or undefined if the user is absent.
   */
  setPasswordHash(name: string, hash: string | null, now: Date, opts?: { revokeApiKeys?: boolean }): Promise<string[] | undefined>;
  insertGroup(g: { name: string; displayName: string; createTime: Date }): Promise<GroupRecord>;
  getGroup(name: string): Promise<GroupRecord | undefined>;
  listGroups(q: { afterName?: string; limit: number }): Promise<GroupRecord[]>;
  /** Deletes the group with its memberships and grants. */
  deleteGroup(name: string): Promise<boolean>;
  addMember(group: string, user: string): Promise<void>;
  removeMember(group: string, user: string): Promise<void>;
}

/** Refresh tokens, API keys and signing keys (adapter: `src/store/credential-store.ts`). */
export interface CredentialRepository {
  insertRefreshToken(t: { hash: string; family: string; user: string; createTime: Date; expireTime: Date }): Promise<void>;
  /**
   * In one transaction: marks the token used and inserts its successor in the same family. If
   * the token was already used or revoked, revokes the whole family instead ("reuse") and records
   * the session as ended; unknown or expired tokens change nothing.
   */
  rotateRefreshToken(
    hash: string,
    next: { hash: string; createTime: Date; expireTime: Date },
    now: Date,
  ): Promise<{ outcome: "rotated"; user: string; family: string } | { outcome: "reused"; user: string; family: string } | { outcome: "expired" | "unknown" }>;
  /** Revokes the family of the token and records the session as ended; undefined if unknown. */
  revokeFamilyOf(hash: string, now: Date): Promise<{ user: string; family: string } | undefined>;
  /** Sessions ended at or after `since` (`session_revocations`). */
  revokedSessions(since: Date): Promise<string[]>;
  /** Deletes records of sessions ended before `before` (their tokens have all expired). */
  pruneRevokedSessions(before: Date): Promise<void>;

  insertApiKey(k: ApiKeyRecord & { secretHash: string }): Promise<void>;
  /**
   * The unrevoked key with this secret hash, also when expired (the caller refuses it, saying why);
   * records the use of an unexpired one (at most once a minute).
   */
  useApiKey(secretHash: string, now: Date): Promise<ApiKeyRecord | undefined>;
  listApiKeys(user: string): Promise<ApiKeyRecord[]>;
  /** Revokes the key and records its session (`apiKeySession`) as ended; false if absent or already revoked. */
  revokeApiKey(user: string, id: string, now: Date): Promise<boolean>;

  signingKeys(now: Date): Promise<SigningKey[]>;
  insertSigningKey(k: SigningKey): Promise<void>;
  /** Deletes keys whose `expireTime` has passed. */
  pruneSigningKeys(now: Date): Promise<void>;
}

/** Grants (adapter: `src/store/grant-store.ts`). */
export interface GrantRepository {
  /** Inserts, or replaces the role of the same principal+target; returns the stored grant. */
  upsert(g: GrantRecord): Promise<GrantRecord>;
  get(id: string): Promise<GrantRecord | undefined>;
  /**
   * Grants after `afterId` in id order. `visibleTo` limits them to the user's own grants (direct
   * or by group) and grants on devices they own.
   */
  list(q: { afterId?: string; limit: number; device?: string; visibleTo?: { user: string; groups: string[] } }): Promise<GrantRecord[]>;
  delete(id: string): Promise<boolean>;
}
