import { randomBytes } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type ApiKey, ApiKeySchema, type Group, GroupSchema, type User, UserSchema } from "../../../gen/tether/v1/user_pb.js";
import type {
  CreateApiKeyRequest,
  CreateGroupRequest,
  CreateUserRequest,
  ListGroupsRequest,
  ListGroupsResponse,
  ListUsersRequest,
  ListUsersResponse,
} from "../../../gen/tether/v1/user_service_pb.js";
import { type Access, requireAdmin } from "../access/access.js";
import type { RightsResolver } from "../access/rights-resolver.js";
import type { ApiKeyRecord, CredentialRepository, GroupRecord, UserRecord, UserRepository } from "../ports/auth.js";
import { hashPassword, passwordProblem, verifyPassword } from "../auth/passwords.js";
import { API_KEY_PREFIX, newSecret, secretHash } from "../auth/secrets.js";
import { apiKeySession, type SessionRevocations } from "../auth/session-revocations.js";
import type { Clock } from "../clock.js";
import { InvalidArgumentError, NotFoundError, PermissionDeniedError, Violations } from "../errors.js";
import { decodePageToken, encodePageToken, resolvePageSize } from "../page-token.js";
import { createRateLimiter } from "../rate-limit.js";
import { type CallerProof, requireCallerPassword, resolveApiKeyExpiry, takeConfirmation } from "./api-key-rules.js";
import { groupName, isValidPrincipalId, parseGroupName, parseUserName, userName } from "./user-name.js";

export interface UserServiceDeps {
  users: UserRepository;
  creds: CredentialRepository;
  rights: RightsResolver;
  /** Told which sessions a password change or a deleted user ended, so their access tokens die at once. */
  sessions: Pick<SessionRevocations, "ended">;
  clock: Clock;
}

export type UserService = ReturnType<typeof createUserService>;

/** The password hash never leaves this function: a User only says whether one is set. */
function toUserProto(u: UserRecord): User {
  return create(UserSchema, {
    name: userName(u.name),
    displayName: u.displayName,
    admin: u.admin,
    hasPassword: u.passwordHash !== null,
    groups: u.groups.map(groupName),
    createTime: timestampFromDate(u.createTime),
  });
}

function toGroupProto(g: GroupRecord): Group {
  return create(GroupSchema, { name: groupName(g.name), displayName: g.displayName, members: g.members.map(userName) });
}

function toApiKeyProto(k: ApiKeyRecord, secret = ""): ApiKey {
  return create(ApiKeySchema, {
    name: `users/${k.user}/apiKeys/${k.id}`,
    displayName: k.displayName,
    secret,
    createTime: timestampFromDate(k.createTime),
    lastUsedTime: k.lastUsedTime ? timestampFromDate(k.lastUsedTime) : undefined,
    expiration: k.expireTime ? { case: "expireTime", value: timestampFromDate(k.expireTime) } : { case: undefined },
  });
}

/**
 * Users, groups and API keys. Admins manage everyone; a user may read themselves, set their own
 * password and manage their own API keys (`users/me` names the caller).
 */
export function createUserService({ users, creds, rights, sessions, clock }: UserServiceDeps) {
  // Checks of a current password (SetPassword, CreateApiKey) per user: 5 at once, then one a minute.
  // Per process, like the login limiter; Login itself is not counted here.
  const confirmations = createRateLimiter({ ratePerS: 1 / 60, burst: 5, now: () => clock.now().getTime() });
  /** Resolves `users/me` and refuses acting on someone else unless admin. */
  function self(access: Access, name: string, field: string, what: string): string {
    const id = parseUserName(name, field);
    const user = id === "me" ? access.caller.user : id;
    if (user !== access.caller.user) requireAdmin(access, what);
    return user;
  }

  async function mustGetUser(id: string): Promise<UserRecord> {
    const u = await users.getUser(id);
    if (!u) throw new NotFoundError(userName(id));
    return u;
  }

  return {
    async createUser(access: Access, req: CreateUserRequest): Promise<User> {
      requireAdmin(access, "creating users");
      const v = new Violations();
      if (!isValidPrincipalId(req.userId))
        v.add("user_id", 'must be 1-63 lowercase letters, digits, dots, hyphens or underscores, starting with a letter (not "me")');
      if (req.password !== "") {
        const problem = passwordProblem(req.password);
        if (problem) v.add("password", problem);
      }
      if ((req.user?.displayName.length ?? 0) > 256) v.add("user.display_name", "must be at most 256 characters");
      v.throwIfAny();
      const now = clock.now();
      const created = await users.insertUser({
        name: req.userId,
        displayName: req.user?.displayName ?? "",
        admin: req.user?.admin ?? false,
        passwordHash: req.password !== "" ? await hashPassword(req.password) : null,
        createTime: now,
      });
      return toUserProto(created);
    },

    async getUser(access: Access, name: string): Promise<User> {
      return toUserProto(await mustGetUser(self(access, name, "name", "reading other users")));
    },

    async listUsers(access: Access, req: ListUsersRequest): Promise<ListUsersResponse> {
      requireAdmin(access, "listing users");
      const limit = resolvePageSize(req.pageSize);
      const after = decodePageToken(req.pageToken, "users");
      const rows = await users.listUsers({ afterName: after, limit: limit + 1 });
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      return {
        $typeName: "tether.v1.ListUsersResponse",
        users: page.map(toUserProto),
        nextPageToken: rows.length > limit && last ? encodePageToken(last.name, "users") : "",
      };
    },

    async deleteUser(access: Access, name: string): Promise<void> {
      requireAdmin(access, "deleting users");
      const id = parseUserName(name);
      if (id === access.caller.user || id === "me") throw new PermissionDeniedError("you cannot delete yourself");
      const ended = await users.deleteUser(id, clock.now());
      if (!ended) throw new NotFoundError(userName(id));
      sessions.ended(ended);
      rights.changed({ user: id });
    },

    /** Sets the password and ends every session of the user; `revokeApiKeys` revokes their API keys too. */
    async setPassword(access: Access, name: string, password: string, currentPassword = "", opts: { revokeApiKeys?: boolean } = {}): Promise<void> {
      const id = self(access, name, "name", "setting another user's password");
      if (!access.caller.admin) {
        const current = await mustGetUser(id);
        if (current.passwordHash !== null) takeConfirmation(confirmations, id);
        if (current.passwordHash !== null && !(await verifyPassword(currentPassword, current.passwordHash))) {
          throw new PermissionDeniedError("current_password is wrong: changing your password needs the current one");
        }
      }
      if (password !== "") {
        const problem = passwordProblem(password);
        if (problem) throw InvalidArgumentError.field("password", problem);
      }
      const ended = await users.setPasswordHash(id, password === "" ? null : await hashPassword(password), clock.now(), { revokeApiKeys: opts.revokeApiKeys });
      if (!ended) throw new NotFoundError(userName(id));
      sessions.ended(ended);
    },

    async createGroup(access: Access, req: CreateGroupRequest): Promise<Group> {
      requireAdmin(access, "creating groups");
      if (!isValidPrincipalId(req.groupId))
        throw InvalidArgumentError.field("group_id", "must be 1-63 lowercase letters, digits, dots, hyphens or underscores, starting with a letter");
      return toGroupProto(await users.insertGroup({ name: req.groupId, displayName: req.group?.displayName ?? "", createTime: clock.now() }));
    },

    async listGroups(access: Access, req: ListGroupsRequest): Promise<ListGroupsResponse> {
      requireAdmin(access, "listing groups");
      const limit = resolvePageSize(req.pageSize);
      const after = decodePageToken(req.pageToken, "groups");
      const rows = await users.listGroups({ afterName: after, limit: limit + 1 });
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      return {
        $typeName: "tether.v1.ListGroupsResponse",
        groups: page.map(toGroupProto),
        nextPageToken: rows.length > limit && last ? encodePageToken(last.name, "groups") : "",
      };
    },

    async deleteGroup(access: Access, name: string): Promise<void> {
      requireAdmin(access, "deleting groups");
      const id = parseGroupName(name);
      if (!(await users.deleteGroup(id))) throw new NotFoundError(groupName(id));
      rights.changed();
    },

    async addGroupMember(access: Access, group: string, user: string, add: boolean): Promise<Group> {
      requireAdmin(access, "changing group members");
      const g = parseGroupName(group, "group");
      const u = parseUserName(user, "user");
      if (!(await users.getGroup(g))) throw new NotFoundError(groupName(g));
      await mustGetUser(u);
      if (add) await users.addMember(g, u);
      else await users.removeMember(g, u);
      rights.changed({ user: u });
      return toGroupProto((await users.getGroup(g))!);
    },

    /**
     * Creates an API key. `proof` is how the caller authenticated: with a token or an API key the
     * request must carry the caller's own current password (see requireCallerPassword).
     */
    async createApiKey(access: Access, req: CreateApiKeyRequest, proof: CallerProof): Promise<ApiKey> {
      const user = self(access, req.parent, "parent", "creating API keys for another user");
      const displayName = req.apiKey?.displayName ?? "";
      const now = clock.now();
      const v = new Violations();
      if (displayName.length > 256) v.add("api_key.display_name", "must be at most 256 characters");
      if (req.currentPassword.length > 1024) v.add("current_password", "must be at most 1024 characters");
      v.throwIfAny();
      const expireTime = resolveApiKeyExpiry(req.apiKey, now);
      await requireCallerPassword(proof, await users.getUser(access.caller.user), req.currentPassword, confirmations);
      await mustGetUser(user);
      const secret = newSecret(API_KEY_PREFIX);
      const record: ApiKeyRecord = { id: randomBytes(6).toString("hex"), user, displayName, createTime: now, expireTime };
      await creds.insertApiKey({ ...record, secretHash: secretHash(secret) });
      return toApiKeyProto(record, secret);
    },

    async listApiKeys(access: Access, parent: string): Promise<ApiKey[]> {
      const user = self(access, parent, "parent", "listing another user's API keys");
      return (await creds.listApiKeys(user)).map((k) => toApiKeyProto(k));
    },

    async deleteApiKey(access: Access, name: string): Promise<void> {
      const m = /^users\/([^/]+)\/apiKeys\/([0-9a-f]{1,64})$/.exec(name);
      if (!m) throw InvalidArgumentError.field("name", "must be users/{user}/apiKeys/{api_key}");
      const user = self(access, `users/${m[1]}`, "name", "revoking another user's API keys");
      if (!(await creds.revokeApiKey(user, m[2]!, clock.now()))) throw new NotFoundError(name);
      sessions.ended([apiKeySession(m[2]!)]);
    },
  };
}
