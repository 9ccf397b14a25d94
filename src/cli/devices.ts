import { parseArgs } from "node:util";
import { create, toJson } from "@bufbuild/protobuf";
import { FieldMaskSchema } from "@bufbuild/protobuf/wkt";
import { type Device, DeviceSchema } from "../../gen/tether/v1/device_pb.js";
import { CountDevicesResponseSchema, DeviceService, ListDevicesResponseSchema } from "../../gen/tether/v1/device_service_pb.js";
import { productByCase, PRODUCTS } from "../core/products/index.js";
import { deletedText, exists } from "./allow-missing.js";
import { connectClient } from "./client.js";
import { DEVICE_FLAGS, desiredFlagValues, desiredFromFlags, desiredUsage, parseLabels } from "./device-args.js";
import { lastEventText, printConnectivity } from "./connectivity.js";
import { json, table, time } from "./format.js";
import { KIND_CHOICES, productOf } from "./kinds.js";

const KIND_WIDTH = Math.max(...PRODUCTS.map((p) => p.kindName.length)) + 2;

export const DEVICES_USAGE = `tether devices <command> [flags]

  create <id> --kind ${KIND_CHOICES} [--display-name S] [--label k=v]... [--owner S] [--firmware S]
         desired state, by kind (the flags of other kinds are refused):
${PRODUCTS.map((p) => `           ${`${p.kindName}:`.padEnd(KIND_WIDTH)}${desiredUsage(p)}`).join("\n")}
  get <id>
  list [--kind K] [--label k=v]... [--online true|false] [--filter EXPR] [--page-size N] [--page-token T]
  count [same selection flags as list] [--group-by firmware_version|kind|online|labels.KEY]
         --filter EXPR is an AIP-160 filter: comparisons (= != < <= > >=, and :* for "has a value")
         joined by AND, OR, NOT (or -) and parentheses; OR binds tighter than AND. Fields: name, kind,
         owner, display_name, online, create_time, last_seen_time (RFC 3339), firmware_version (semver
         order), labels.KEY, <kind>.reported.<field> / <kind>.desired.<field>. E.g.
         --filter 'firmware_version < "1.10.0" AND (labels.site = north OR NOT online = true)'
         --filter '<kind>.reported.<field> < 18'   (a numeric field of that kind's reported state)
  update <id> [same flags as create, except --kind] [--etag E]   (only the flags given are changed)
         --label k=v... sets the labels to exactly these; --add-label k=v... and --remove-label k...
         change only the labels named (the others stay)
  delete <id> [--etag E] [--allow-missing]
  connectivity <id> [--page-size N] [--page-token T]   connects and disconnects with their reasons, newest first

  --kind also takes an alias: ${PRODUCTS.flatMap((p) => p.words.aliases.map((a) => `${a} (${p.kindName})`)).join(", ") || "none"}

Global: --json (protobuf JSON output), --address https://host:port, --certs DIR`;

const COMMON = {
  json: { type: "boolean" },
  address: { type: "string" },
  certs: { type: "string" },
} as const;

/**
 * --filter with --kind, --online and --label ANDed to it (each term its own group, so an OR in
 * --filter stays inside its parentheses).
 */
function filterOf(v: { filter?: string; kind?: string; online?: string; label?: string[] }): string {
  const terms = v.filter ? [`(${v.filter})`] : [];
  if (v.kind) terms.push(`kind = "${productOf(v.kind).kindName}"`);
  if (v.online) terms.push(`online = ${v.online}`);
  for (const [k, val] of Object.entries(parseLabels(v.label))) terms.push(`labels.${k} = "${val.replace(/["\\]/g, "\\$&")}"`);
  return terms.length === 1 && v.filter ? v.filter : terms.join(" AND ");
}

/** `tether devices ...`; prints to stdout and returns the exit code. */
export async function devicesCommand(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  const { values: v, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      ...COMMON,
      ...DEVICE_FLAGS,
      "add-label": { type: "string", multiple: true },
      "remove-label": { type: "string", multiple: true },
      online: { type: "string" },
      filter: { type: "string" },
      "page-size": { type: "string" },
      "page-token": { type: "string" },
      "group-by": { type: "string" },
      "allow-missing": { type: "boolean" },
    },
  });
  const client = connectClient(DeviceService, { address: v.address, certsDir: v.certs });
  const name = () => {
    const id = positionals[0];
    if (!id) throw new Error(`tether devices ${sub}: missing device id\n\n${DEVICES_USAGE}`);
    return id.startsWith("devices/") ? id : `devices/${id}`;
  };
  const out = (d: Device) => console.log(v.json ? json(DeviceSchema, d) : describe(d));

  switch (sub) {
    case "create": {
      if (!v.kind) throw new Error(`tether devices create: --kind ${KIND_CHOICES} is required`);
      const desired = desiredFromFlags(productOf(v.kind), desiredFlagValues(v));
      const device = create(DeviceSchema, {
        displayName: v["display-name"] ?? "",
        labels: parseLabels(v.label),
        owner: v.owner ?? "",
        firmwareVersion: v.firmware ?? "",
        kind: desired.kind,
      });
      return out(await client.createDevice({ device, deviceId: name().slice("devices/".length) }));
    }
    case "get":
      return out(await client.getDevice({ name: name() }));
    case "count": {
      const res = await client.countDevices({ filter: filterOf(v), groupBy: v["group-by"] ?? "" });
      if (v.json) return console.log(json(CountDevicesResponseSchema, res));
      if (res.groups.length > 0) {
        const head = (v["group-by"] ?? "").toUpperCase();
        const rows = res.groups.map((g) => [g.value === undefined ? "(none)" : g.value === "" ? '""' : g.value, String(g.count)]);
        if (res.otherCount > 0n) rows.push(["(other)", String(res.otherCount)]);
        console.log(table([head, "DEVICES"], rows));
      }
      console.log(`total: ${res.totalCount}`);
      return;
    }
    case "list": {
      const res = await client.listDevices({ filter: filterOf(v), pageSize: Number(v["page-size"] ?? 0), pageToken: v["page-token"] ?? "" });
      if (v.json) return console.log(json(ListDevicesResponseSchema, res));
      console.log(table(["NAME", "KIND", "DISPLAY NAME", "ONLINE", "LAST SEEN", "LABELS", "DESIRED"], res.devices.map(row)));
      if (res.nextPageToken) console.log(`\nmore: --page-token ${res.nextPageToken}`);
      return;
    }
    case "update": {
      const device = create(DeviceSchema, { name: name(), etag: v.etag ?? "" });
      const paths: string[] = [];
      if (v["display-name"] !== undefined) (device.displayName = v["display-name"]), paths.push("display_name");
      if (v.label !== undefined) (device.labels = parseLabels(v.label)), paths.push("labels");
      if (v["add-label"] !== undefined || v["remove-label"] !== undefined) {
        if (v.label !== undefined) throw new Error("tether devices update: --label sets every label; use it or --add-label/--remove-label, not both");
        // Read-modify-write under the device's etag: a concurrent label change is ABORTED, not lost.
        const current = await client.getDevice({ name: name() });
        const labels = { ...current.labels, ...parseLabels(v["add-label"]) };
        for (const k of v["remove-label"] ?? []) delete labels[k];
        device.labels = labels;
        device.etag ||= current.etag;
        paths.push("labels");
      }
      if (v.owner !== undefined) (device.owner = v.owner), paths.push("owner");
      if (v.firmware !== undefined) (device.firmwareVersion = v.firmware), paths.push("firmware_version");
      const flags = desiredFlagValues(v);
      if (Object.keys(flags).length > 0) {
        // The flags mean what the device's kind says they mean (`--mode` differs by kind).
        const current = await client.getDevice({ name: name() });
        const desired = desiredFromFlags(productByCase(current.kind.case!), flags);
        device.kind = desired.kind;
        paths.push(...desired.paths);
      }
      if (paths.length === 0) throw new Error("tether devices update: nothing to change; pass at least one flag");
      return out(await client.updateDevice({ device, updateMask: create(FieldMaskSchema, { paths }) }));
    }
    case "delete": {
      const found = !v["allow-missing"] || (await exists(() => client.getDevice({ name: name() })));
      await client.deleteDevice({ name: name(), etag: v.etag ?? "", allowMissing: v["allow-missing"] ?? false });
      if (!v.json) console.log(deletedText(name(), found));
      return;
    }
    case "connectivity":
      return printConnectivity(client, name(), v);
    default:
      throw new Error(DEVICES_USAGE);
  }
}

function row(d: Device): string[] {
  return [
    d.name,
    d.kind.case ? productByCase(d.kind.case).kindName : "-",
    d.displayName || "-",
    d.connectivity?.online ? "yes" : "no",
    time(d.connectivity?.lastSeenTime),
    Object.entries(d.labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(",") || "-",
    summary(d, "desired"),
  ];
}

/** The product state as compact JSON, e.g. `{"power":true,"brightness":40}`. */
function summary(d: Device, which: "desired" | "reported"): string {
  if (!d.kind.case) return "-";
  const product = productByCase(d.kind.case);
  const state = (d.kind.value as unknown as Record<string, never>)[which];
  const schema = which === "desired" ? product.desiredSchema : product.reportedSchema;
  const s = state ? JSON.stringify(toJson(schema, state)) : "{}";
  return s === "{}" ? "-" : s;
}

function describe(d: Device): string {
  return table(
    ["FIELD", "VALUE"],
    [
      ["name", d.name],
      ["uid", d.uid],
      ["kind", d.kind.case ? productByCase(d.kind.case).kindName : "-"],
      ["display_name", d.displayName || "-"],
      [
        "labels",
        Object.entries(d.labels)
          .map(([k, v]) => `${k}=${v}`)
          .join(",") || "-",
      ],
      ["owner", d.owner || "-"],
      ["firmware_version", d.firmwareVersion || "-"],
      ["online", d.connectivity?.online ? "yes" : "no"],
      ["last_seen", time(d.connectivity?.lastSeenTime)],
      ["last_uplink", time(d.connectivity?.lastUplinkTime)],
      ["silent", d.connectivity?.silent ? "yes" : "no"],
      ["last_event", lastEventText(d.connectivity?.lastEvent)],
      ["desired", summary(d, "desired")],
      ["reported", summary(d, "reported")],
      ["create_time", time(d.createTime)],
      ["update_time", time(d.updateTime)],
      ["etag", d.etag],
    ],
  );
}
