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
  /** Deletes the user with their keys, tokens, memberships and grants; false if absent. */
  deleteUser(name: string): Promise<boolean>;
  /** Sets the hash and revokes the user's refresh tokens; false if absent. */
  setPasswordHash(name: string, hash: string | null, now: Date): Promise<boolean>;
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
   * the token was already used or revoked, revokes the whole family instead ("reuse"); unknown or
   * expired tokens change nothing.
   */
  rotateRefreshToken(hash: string, next: { hash: string; createTime: Date; expireTime: Date }, now: Date): Promise<
    { outcome: "rotated"; user: string; family: string } | { outcome: "reused"; user: string; family: string } | { outcome: "expired" | "unknown" }
  >;
  /** Revokes the family of the token; returns the user or undefined if unknown. */
  revokeFamilyOf(hash: string): Promise<string | undefined>;

  insertApiKey(k: ApiKeyRecord & { secretHash: string }): Promise<void>;
  /** The unrevoked key with this secret hash; records its use (at most once a minute). */
  useApiKey(secretHash: string, now: Date): Promise<ApiKeyRecord | undefined>;
  listApiKeys(user: string): Promise<ApiKeyRecord[]>;
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
