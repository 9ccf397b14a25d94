import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type Grant, Grant_Role, GrantSchema } from "../../../gen/tether/v1/share_service_pb.js";
import type { ListGrantsRequest, ListGrantsResponse } from "../../../gen/tether/v1/share_service_pb.js";
import type { GrantRecord, GrantRepository, UserRepository } from "../ports/auth.js";
import type { Clock } from "../clock.js";
import { parseDeviceName } from "../devices/device-name.js";
import type { DeviceRepository } from "../ports/device-repository.js";
import { InvalidArgumentError, NotFoundError, Violations } from "../errors.js";
import { decodePageToken, encodePageToken, resolvePageSize } from "../page-token.js";
import { groupName, parseGroupName, parseUserName, userName } from "../users/user-name.js";
import { type Access, requireAdmin } from "./access.js";
import { createDeviceRights } from "./device-rights.js";
import type { RightsResolver } from "./rights-resolver.js";
import type { Role } from "./roles.js";
import { parseSelector } from "./selector.js";

const ROLE_OF: Record<number, Role | undefined> = { [Grant_Role.VIEWER]: "viewer", [Grant_Role.OPERATOR]: "operator", [Grant_Role.OWNER]: "owner" };
const ROLE_ENUM: Record<Role, Grant_Role> = { viewer: Grant_Role.VIEWER, operator: Grant_Role.OPERATOR, owner: Grant_Role.OWNER };

export interface ShareServiceDeps {
  grants: GrantRepository;
  users: UserRepository;
  devices: DeviceRepository;
  rights: RightsResolver;
  clock: Clock;
}

export type ShareService = ReturnType<typeof createShareService>;

export function toGrantProto(g: GrantRecord): Grant {
  return create(GrantSchema, {
    name: `grants/${g.id}`,
    principal: g.principalKind === "user" ? userName(g.principal) : groupName(g.principal),
    target: g.targetKind === "device" ? { case: "device", value: `devices/${g.target}` } : { case: "selector", value: g.target },
    role: ROLE_ENUM[g.role],
    creator: userName(g.creator),
    createTime: timestampFromDate(g.createTime),
  });
}

/**
 * Sharing: a device's owner shares it (or unshares it); selector shares are admin-only since a
 * selector can match devices the sharer does not own. Every change is published so each
 * replica's rights cache, and every open watch stream, sees it at once.
 */
export function createShareService({ grants, users, devices, rights, clock }: ShareServiceDeps) {
  const deviceRights = createDeviceRights(devices);

  async function authorizeTarget(access: Access, g: Pick<GrantRecord, "targetKind" | "target">): Promise<void> {
    if (g.targetKind === "selector") requireAdmin(access, "sharing a label selector");
    else await deviceRights.require(access, "device.share", g.target);
  }

  return {
    async createGrant(access: Access, input: Grant | undefined): Promise<Grant> {
      if (!input) throw InvalidArgumentError.field("grant", "is required");
      const v = new Violations();
      let principalKind: GrantRecord["principalKind"] = "user";
      let principal = "";
      try {
        if (input.principal.startsWith("groups/")) (principalKind = "group"), (principal = parseGroupName(input.principal, "grant.principal"));
        else principal = parseUserName(input.principal, "grant.principal");
        if (principal === "me") principal = access.caller.user;
      } catch {
        v.add("grant.principal", "must be users/{user} or groups/{group}");
      }
      const role = ROLE_OF[input.role];
      if (!role) v.add("grant.role", "must be ROLE_VIEWER, ROLE_OPERATOR or ROLE_OWNER");
      let targetKind: GrantRecord["targetKind"] = "device";
      let target = "";
      if (input.target.case === "device") target = parseDeviceName(input.target.value, "grant.device");
      else if (input.target.case === "selector") {
        targetKind = "selector";
        target = input.target.value.trim();
        parseSelector(target, "grant.selector");
      } else v.add("grant.target", "is required: set device or selector");
      v.throwIfAny();
      await authorizeTarget(access, { targetKind, target });
      const exists = principalKind === "user" ? await users.getUser(principal) : await users.getGroup(principal);
      if (!exists) throw new NotFoundError(input.principal);
      const stored = await grants.upsert({
        id: randomUUID(),
        principalKind,
        principal,
        targetKind,
        target,
        role: role!,
        creator: access.caller.user,
        createTime: clock.now(),
      });
      rights.changed(principalKind === "user" ? { user: principal } : {});
      return toGrantProto(stored);
    },

    async listGrants(access: Access, req: ListGrantsRequest): Promise<ListGrantsResponse> {
      const limit = resolvePageSize(req.pageSize);
      const query = `grants|${req.device}`;
      const after = decodePageToken(req.pageToken, query);
      const device = req.device === "" ? undefined : parseDeviceName(req.device, "device");
      const rows = await grants.list({
        afterId: after,
        limit: limit + 1,
        device,
        visibleTo: access.all ? undefined : { user: access.caller.user, groups: access.caller.groups },
      });
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      return {
        $typeName: "tether.v1.ListGrantsResponse",
        grants: page.map(toGrantProto),
        nextPageToken: rows.length > limit && last ? encodePageToken(last.id, query) : "",
      };
    },

    async deleteGrant(access: Access, name: string): Promise<void> {
      const m = /^grants\/([0-9a-f-]{36})$/.exec(name);
      if (!m) throw InvalidArgumentError.field("name", "must be grants/{grant}");
      const g = await grants.get(m[1]!);
      if (!g) throw new NotFoundError(name);
      // A grant on a device the caller cannot see is, to them, a missing grant.
      if (!access.all && g.targetKind === "device") await deviceRights.require(access, "device.read", g.target, name);
      await authorizeTarget(access, g);
      await grants.delete(g.id);
      rights.changed(g.principalKind === "user" ? { user: g.principal } : {});
    },
  };
}
