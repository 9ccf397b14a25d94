import { create } from "@bufbuild/protobuf";
import { EmptySchema } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { UserService as UserServiceDesc } from "../../gen/tether/v1/user_service_pb.js";
import type { UserService } from "../core/users/user-service.js";
import { accessOf, kPrincipal } from "./auth.js";

/** UserService over Connect/gRPC. */
export function userHandler(users: UserService): ServiceImpl<typeof UserServiceDesc> {
  const empty = () => create(EmptySchema);
  return {
    createUser: (req, ctx) => users.createUser(accessOf(ctx), req),
    getUser: (req, ctx) => users.getUser(accessOf(ctx), req.name),
    listUsers: (req, ctx) => users.listUsers(accessOf(ctx), req),
    deleteUser: async (req, ctx) => (await users.deleteUser(accessOf(ctx), req.name), empty()),
    setPassword: async (req, ctx) => (
      await users.setPassword(accessOf(ctx), req.name, req.password, req.currentPassword, { revokeApiKeys: req.revokeApiKeys }), empty()
    ),
    createGroup: (req, ctx) => users.createGroup(accessOf(ctx), req),
    listGroups: (req, ctx) => users.listGroups(accessOf(ctx), req),
    deleteGroup: async (req, ctx) => (await users.deleteGroup(accessOf(ctx), req.name), empty()),
    addGroupMember: (req, ctx) => users.addGroupMember(accessOf(ctx), req.group, req.user, true),
    removeGroupMember: (req, ctx) => users.addGroupMember(accessOf(ctx), req.group, req.user, false),
    // How the caller authenticated decides whether the password is needed; no principal cannot get here.
    createApiKey: (req, ctx) => users.createApiKey(accessOf(ctx), req, ctx.values.get(kPrincipal)?.via ?? "token"),
    listApiKeys: async (req, ctx) => ({ $typeName: "tether.v1.ListApiKeysResponse", apiKeys: await users.listApiKeys(accessOf(ctx), req.parent) }),
    deleteApiKey: async (req, ctx) => (await users.deleteApiKey(accessOf(ctx), req.name), empty()),
  };
}
