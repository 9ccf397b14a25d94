import { parseArgs } from "node:util";
import { create } from "@bufbuild/protobuf";
import { DurationSchema, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ApiKey } from "../../gen/tether/v1/user_pb.js";
import { ListUsersResponseSchema, UserService } from "../../gen/tether/v1/user_service_pb.js";
import { connectClient, resolveAddress } from "./client.js";
import { loadSession } from "./credentials.js";
import { json, table, time } from "./format.js";
import { type CliIo, terminalIo } from "./password-input.js";

export const USERS_USAGE = `tether users <command> [flags]

  create <user> [--admin] [--display-name S] [--password]   (--password asks for it, or reads stdin)
  list
  get <user|me>
  delete <user>
  set-password <user|me> [--current] [--revoke-api-keys]     (asks for it, or reads stdin; empty removes it;
                                                             --current also asks for your current one
                                                             (piped: that on the first line, the new one next);
                                                             ends their sessions; --revoke-api-keys their keys too)
  add-to-group <user> <group> [--create-group]
  remove-from-group <user> <group>
  groups [list | create <group> | delete <group>]
  api-keys create <user|me> [--display-name S] [--expires-in 90d | --expire-time 2027-01-31T00:00:00Z]
                                                            (prints the secret once; signed in with
                                                             tether login, asks for your current password)
  api-keys list <user|me>
  api-keys revoke <users/U/apiKeys/K>

Global: --json, --address https://host:port, --certs DIR`;

/** `tether users ...`. */
export async function usersCommand(argv: string[], io: CliIo = terminalIo): Promise<void> {
  const [sub, ...rest] = argv;
  const { values: v, positionals: p } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      json: { type: "boolean" },
      address: { type: "string" },
      certs: { type: "string" },
      admin: { type: "boolean" },
      "display-name": { type: "string" },
      password: { type: "boolean" },
      "create-group": { type: "boolean" },
      current: { type: "boolean" },
      "revoke-api-keys": { type: "boolean" },
      "expires-in": { type: "string" },
      "expire-time": { type: "string" },
    },
  });
  const client = connectClient(UserService, { address: v.address, certsDir: v.certs, credentialsFile: io.credentialsFile });
  const arg = (i: number, what: string) => {
    const x = p[i];
    if (!x) throw new Error(`tether users ${sub}: missing ${what}\n\n${USERS_USAGE}`);
    return x;
  };
  const user = (x: string) => (x.startsWith("users/") ? x : `users/${x}`);
  const group = (x: string) => (x.startsWith("groups/") ? x : `groups/${x}`);
  const bare = (x: string) => x.replace(/^(users|groups)\//, "");

  switch (sub) {
    case "create": {
      const id = bare(arg(0, "user name"));
      const password = v.password ? await io.readPassword(`password for ${id}: `) : "";
      const u = await client.createUser({ userId: id, password, user: { displayName: v["display-name"] ?? "", admin: v.admin ?? false } });
      return console.log(`created ${u.name}${u.admin ? " (admin)" : ""}${u.hasPassword ? "" : "; no password yet: tether users set-password " + id}`);
    }
    case "list": {
      const res = await client.listUsers({ pageSize: 1000 });
      if (v.json) return console.log(json(ListUsersResponseSchema, res));
      return console.log(
        table(
          ["NAME", "ADMIN", "PASSWORD", "GROUPS", "CREATED"],
          res.users.map((u) => [u.name, u.admin ? "yes" : "", u.hasPassword ? "set" : "-", u.groups.join(","), time(u.createTime)]),
        ),
      );
    }
    case "get": {
      const u = await client.getUser({ name: user(arg(0, "user name")) });
      return console.log(
        `${u.name}${u.admin ? " (admin)" : ""}\n  display name: ${u.displayName || "-"}\n  password: ${u.hasPassword ? "set" : "not set"}\n  groups: ${u.groups.join(", ") || "-"}`,
      );
    }
    case "delete":
      await client.deleteUser({ name: user(arg(0, "user name")) });
      return console.log(`deleted ${user(p[0]!)}`);
    case "set-password": {
      const name = user(arg(0, "user name"));
      const currentPassword = v.current ? await io.readPassword(`current password of ${name}: `) : "";
      const password = await io.readPassword(`new password for ${name}: `);
      const revokeApiKeys = v["revoke-api-keys"] ?? false;
      await client.setPassword({ name, password, currentPassword, revokeApiKeys });
      const keys = revokeApiKeys ? " and API keys were revoked" : " (API keys still work: --revoke-api-keys revokes them)";
      return console.log(
        password ? `password set for ${name}; their sessions were ended${keys}` : `password login disabled for ${name}; their sessions were ended${keys}`,
      );
    }
    case "add-to-group":
    case "remove-from-group": {
      const [u, g] = [user(arg(0, "user name")), group(arg(1, "group name"))];
      if (sub === "add-to-group" && v["create-group"])
        await client.createGroup({ groupId: bare(g) }).catch((err: unknown) => {
          if (!(err instanceof Error && /already exists/.test(err.message))) throw err;
        });
      const res = sub === "add-to-group" ? await client.addGroupMember({ group: g, user: u }) : await client.removeGroupMember({ group: g, user: u });
      return console.log(`${res.name}: ${res.members.join(", ") || "no members"}`);
    }
    case "groups": {
      const [op = "list", name] = p;
      if (op === "create")
        return console.log(
          `created ${(await client.createGroup({ groupId: bare(name ?? arg(1, "group name")), group: { displayName: v["display-name"] ?? "" } })).name}`,
        );
      if (op === "delete") return void (await client.deleteGroup({ name: group(name ?? arg(1, "group name")) }), console.log(`deleted ${group(name!)}`));
      const res = await client.listGroups({ pageSize: 1000 });
      return console.log(
        table(
          ["NAME", "MEMBERS"],
          res.groups.map((g) => [g.name, g.members.join(",")]),
        ),
      );
    }
    case "api-keys": {
      const [op, target] = p;
      if (op === "create") {
        const expiration = expirationFlags(v["expires-in"], v["expire-time"]);
        // Signed in with a token, the server wants the password too; the client certificate needs none.
        const session = loadSession(resolveAddress({ address: v.address }), io.credentialsFile);
        const currentPassword = session ? await io.readPassword(`current password of ${session.user}: `) : "";
        const k = await client.createApiKey({ parent: user(target ?? "me"), apiKey: { displayName: v["display-name"] ?? "", expiration }, currentPassword });
        const until = k.expiration.case === "expireTime" ? `; expires ${time(k.expiration.value)}` : "; never expires (until revoked)";
        return console.log(`${k.name}${until}\nsecret (shown once; send as "authorization: Bearer <secret>"):\n${k.secret}`);
      }
      if (op === "list") {
        const res = await client.listApiKeys({ parent: user(target ?? "me") });
        const expires = (k: ApiKey) => (k.expiration.case === "expireTime" ? time(k.expiration.value) : "never");
        return console.log(
          table(
            ["NAME", "DISPLAY NAME", "CREATED", "EXPIRES", "LAST USED"],
            res.apiKeys.map((k) => [k.name, k.displayName, time(k.createTime), expires(k), time(k.lastUsedTime)]),
          ),
        );
      }
      if (op === "revoke") {
        await client.deleteApiKey({ name: arg(1, "API key name (users/U/apiKeys/K)") });
        return console.log(`revoked ${target}`);
      }
      throw new Error(`tether users api-keys: expected create, list or revoke\n\n${USERS_USAGE}`);
    }
    default:
      throw new Error(`unknown users command "${sub ?? ""}"\n\n${USERS_USAGE}`);
  }
}

/** `--expires-in 90d` (s, m, h or d) or `--expire-time <RFC 3339>` as ApiKey.expiration; neither: never. */
function expirationFlags(expiresIn: string | undefined, expireTime: string | undefined): ApiKey["expiration"] {
  if (expiresIn !== undefined && expireTime !== undefined) throw new Error("tether users api-keys create: give --expires-in or --expire-time, not both");
  if (expiresIn !== undefined) {
    const m = /^(\d{1,9})([smhd])$/.exec(expiresIn.trim());
    if (!m) throw new Error(`--expires-in ${expiresIn}: expected a number and a unit, e.g. 3600s, 90m, 12h, 90d`);
    const seconds = Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86_400 }[m[2] as "s" | "m" | "h" | "d"];
    return { case: "ttl", value: create(DurationSchema, { seconds: BigInt(seconds) }) };
  }
  if (expireTime !== undefined) {
    const at = new Date(expireTime);
    if (!/^\d{4}-\d\d-\d\dT/.test(expireTime) || Number.isNaN(at.getTime()))
      throw new Error(`--expire-time ${expireTime}: expected an RFC 3339 time, e.g. 2027-01-31T00:00:00Z`);
    return { case: "expireTime", value: timestampFromDate(at) };
  }
  return { case: undefined };
}
