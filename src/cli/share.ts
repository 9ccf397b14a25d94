import { parseArgs } from "node:util";
import { type Grant, Grant_Role, ListGrantsResponseSchema, ShareService } from "../../gen/tether/v1/share_service_pb.js";
import { connectClient } from "./client.js";
import { json, table, time } from "./format.js";
import { type CliIo, terminalIo } from "./password-input.js";

export const SHARE_USAGE = `tether share <command> [flags]

  add <device> (--user U | --group G) --role viewer|operator|owner
  add --selector 'labels.room = "kitchen"' (--user U | --group G) --role R     (admins only)
  remove <grant-id | grants/ID>
  remove <device> (--user U | --group G)                    (the share of that device with them)
  list [<device>]

Global: --json, --address https://host:port, --certs DIR`;

const ROLES: Record<string, Grant_Role> = { viewer: Grant_Role.VIEWER, operator: Grant_Role.OPERATOR, owner: Grant_Role.OWNER };

/** `tether share ...`: share and unshare devices or label selectors with users and groups. */
export async function shareCommand(argv: string[], io: CliIo = terminalIo): Promise<void> {
  const [sub, ...rest] = argv;
  const { values: v, positionals: p } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      json: { type: "boolean" },
      address: { type: "string" },
      certs: { type: "string" },
      user: { type: "string" },
      group: { type: "string" },
      role: { type: "string" },
      selector: { type: "string" },
    },
  });
  const client = connectClient(ShareService, { address: v.address, certsDir: v.certs, credentialsFile: io.credentialsFile });
  const device = (x: string) => (x.startsWith("devices/") ? x : `devices/${x}`);
  const principal = () => {
    if ((v.user === undefined) === (v.group === undefined)) throw new Error(`tether share ${sub}: give exactly one of --user or --group\n\n${SHARE_USAGE}`);
    return v.user !== undefined ? `users/${v.user.replace(/^users\//, "")}` : `groups/${v.group!.replace(/^groups\//, "")}`;
  };
  const listAll = async (dev?: string) => {
    const out: Grant[] = [];
    let pageToken = "";
    do {
      const res = await client.listGrants({ device: dev ?? "", pageSize: 1000, pageToken });
      out.push(...res.grants);
      pageToken = res.nextPageToken;
    } while (pageToken);
    return out;
  };

  switch (sub) {
    case "add": {
      const role = ROLES[v.role ?? ""];
      if (role === undefined) throw new Error(`tether share add: --role viewer|operator|owner is required`);
      const target =
        v.selector !== undefined ? { case: "selector" as const, value: v.selector } : p[0] ? { case: "device" as const, value: device(p[0]) } : undefined;
      if (!target) throw new Error(`tether share add: give a device or --selector\n\n${SHARE_USAGE}`);
      const g = await client.createGrant({ grant: { principal: principal(), target, role } });
      return console.log(`${g.name}: ${describe(g)}`);
    }
    case "remove": {
      const x = p[0];
      if (!x) throw new Error(`tether share remove: give a grant id, or a device with --user/--group\n\n${SHARE_USAGE}`);
      let names: string[];
      if (v.user !== undefined || v.group !== undefined) {
        const who = principal();
        names = (await listAll(device(x))).filter((g) => g.principal === who).map((g) => g.name);
        if (names.length === 0) throw new Error(`${device(x)} is not shared with ${who}`);
      } else names = [x.startsWith("grants/") ? x : `grants/${x}`];
      for (const name of names) await client.deleteGrant({ name });
      return console.log(`removed ${names.join(", ")}`);
    }
    case "list": {
      const grants = await listAll(p[0] ? device(p[0]) : undefined);
      if (v.json) return console.log(json(ListGrantsResponseSchema, { $typeName: "tether.v1.ListGrantsResponse", grants, nextPageToken: "" }));
      return console.log(
        table(
          ["GRANT", "PRINCIPAL", "TARGET", "ROLE", "BY", "CREATED"],
          grants.map((g) => [g.name.replace(/^grants\//, ""), g.principal, target(g), roleName(g.role), g.creator, time(g.createTime)]),
        ),
      );
    }
    default:
      throw new Error(`unknown share command "${sub ?? ""}"\n\n${SHARE_USAGE}`);
  }
}

const roleName = (r: Grant_Role) => Object.entries(ROLES).find(([, x]) => x === r)?.[0] ?? "?";
const target = (g: Grant) => (g.target.case === "selector" ? `selector ${g.target.value}` : (g.target.value ?? "-"));
const describe = (g: Grant) => `${g.principal} is ${roleName(g.role)} of ${target(g)}`;
