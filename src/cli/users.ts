import { parseArgs } from "node:util";
import { ListUsersResponseSchema, UserService } from "../../gen/tether/v1/user_service_pb.js";
import { connectClient } from "./client.js";
import { json, table, time } from "./format.js";
import { type CliIo, terminalIo } from "./password-input.js";

export const USERS_USAGE = `tether users <command> [flags]

  create <user> [--admin] [--display-name S] [--password]   (--password asks for it, or reads stdin)
  list
  get <user|me>
  delete <user>
  set-password <user|me> [--current]                         (asks for it, or reads stdin; empty removes it;
                                                             --current also asks for your current one)
  add-to-group <user> <group> [--create-group]
  remove-from-group <user> <group>
  groups [list | create <group> | delete <group>]
  api-keys create <user|me> [--display-name S]              (prints the secret once)
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
      json: { type: "boolean" }, address: { type: "string" }, certs: { type: "string" },
      admin: { type: "boolean" }, "display-name": { type: "string" }, password: { type: "boolean" }, "create-group": { type: "boolean" }, current: { type: "boolean" },
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
      return console.log(table(["NAME", "ADMIN", "PASSWORD", "GROUPS", "CREATED"], res.users.map((u) => [u.name, u.admin ? "yes" : "", u.hasPassword ? "set" : "-", u.groups.join(","), time(u.createTime)])));
    }
    case "get": {
      const u = await client.getUser({ name: user(arg(0, "user name")) });
      return console.log(`${u.name}${u.admin ? " (admin)" : ""}\n  display name: ${u.displayName || "-"}\n  password: ${u.hasPassword ? "set" : "not set"}\n  groups: ${u.groups.join(", ") || "-"}`);
    }
    case "delete":
      await client.deleteUser({ name: user(arg(0, "user name")) });
      return console.log(`deleted ${user(p[0]!)}`);
    case "set-password": {
      const name = user(arg(0, "user name"));
      const currentPassword = v.current ? await io.readPassword(`current password of ${name}: `) : "";
      const password = await io.readPassword(`new password for ${name}: `);
      await client.setPassword({ name, password, currentPassword });
      return console.log(password ? `password set for ${name}; their sessions were ended` : `password login disabled for ${name}`);
    }
    case "add-to-group":
    case "remove-from-group": {
      const [u, g] = [user(arg(0, "user name")), group(arg(1, "group name"))];
      if (sub === "add-to-group" && v["create-group"]) await client.createGroup({ groupId: bare(g) }).catch((err: unknown) => {
        if (!(err instanceof Error && /already exists/.test(err.message))) throw err;
      });
      const res = sub === "add-to-group" ? await client.addGroupMember({ group: g, user: u }) : await client.removeGroupMember({ group: g, user: u });
      return console.log(`${res.name}: ${res.members.join(", ") || "no members"}`);
    }
    case "groups": {
      const [op = "list", name] = p;
      if (op === "create") return console.log(`created ${(await client.createGroup({ groupId: bare(name ?? arg(1, "group name")), group: { displayName: v["display-name"] ?? "" } })).name}`);
      if (op === "delete") return void (await client.deleteGroup({ name: group(name ?? arg(1, "group name")) }), console.log(`deleted ${group(name!)}`));
      const res = await client.listGroups({ pageSize: 1000 });
      return console.log(table(["NAME", "MEMBERS"], res.groups.map((g) => [g.name, g.members.join(",")])));
    }
    case "api-keys": {
      const [op, target] = p;
      if (op === "create") {
        const k = await client.createApiKey({ parent: user(target ?? "me"), apiKey: { displayName: v["display-name"] ?? "" } });
        return console.log(`${k.name}\nsecret (shown once; send as "authorization: Bearer <secret>"):\n${k.secret}`);
      }
      if (op === "list") {
        const res = await client.listApiKeys({ parent: user(target ?? "me") });
        return console.log(table(["NAME", "DISPLAY NAME", "CREATED", "LAST USED"], res.apiKeys.map((k) => [k.name, k.displayName, time(k.createTime), time(k.lastUsedTime)])));
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
