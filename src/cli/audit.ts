import { parseArgs } from "node:util";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import type { AuditEvent } from "../../gen/tether/v1/audit_pb.js";
import { AuditService, ListAuditEventsResponseSchema } from "../../gen/tether/v1/audit_service_pb.js";
import { connectClient } from "./client.js";
import { json, table, time } from "./format.js";
import { parseTime } from "./telemetry.js";

export const AUDIT_USAGE = `tether audit <command> [flags]

  list [--principal users/alice | users/alice/*] [--resource devices/porch-1] [--method UpdateDevice]
       [--via mcp] [--since 1h|ISO] [--until ISO] [--limit 50]
                                                        newest first; admins see all, users their own calls and their devices'
  watch [--principal P] [--resource R] [--method M] [--via mcp]
                                                        events as they are committed

Global: --json, --address https://host:port, --certs DIR`;

/** `tether audit ...`: who changed what, when, and with what outcome. */
export async function auditCommand(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  const { values: v } = parseArgs({
    args: rest,
    allowPositionals: false,
    options: {
      json: { type: "boolean" },
      address: { type: "string" },
      certs: { type: "string" },
      principal: { type: "string" },
      resource: { type: "string" },
      method: { type: "string" },
      via: { type: "string" },
      since: { type: "string" },
      until: { type: "string" },
      limit: { type: "string" },
    },
  });
  const client = connectClient(AuditService, { address: v.address, certsDir: v.certs });
  const filter = { principal: v.principal ?? "", resource: v.resource ?? "", method: v.method ?? "", via: v.via ?? "" };
  switch (sub) {
    case "list": {
      const now = Date.now();
      const limit = v.limit === undefined ? 50 : Number(v.limit);
      if (!Number.isInteger(limit) || limit < 1) throw new Error(`tether audit list: --limit must be a positive whole number`);
      const events: AuditEvent[] = [];
      let pageToken = "";
      do {
        const res = await client.listAuditEvents({
          ...filter,
          startTime: v.since ? timestampFromDate(parseTime(v.since, now)) : undefined,
          endTime: v.until ? timestampFromDate(parseTime(v.until, now)) : undefined,
          pageSize: Math.min(1000, limit - events.length),
          pageToken,
        });
        events.push(...res.auditEvents);
        pageToken = res.nextPageToken;
      } while (pageToken && events.length < limit);
      if (v.json)
        return console.log(json(ListAuditEventsResponseSchema, { $typeName: "tether.v1.ListAuditEventsResponse", auditEvents: events, nextPageToken: "" }));
      return console.log(table(["TIME", "PRINCIPAL", "METHOD", "RESOURCE", "OUTCOME", "FIELDS"], events.map(row)));
    }
    case "watch": {
      for await (const r of client.watchAuditEvents(filter)) console.log(row(r.auditEvent!).join("  "));
      return;
    }
    default:
      throw new Error(`unknown audit command "${sub ?? ""}"\n\n${AUDIT_USAGE}`);
  }
}

/** `tether.v1.DeviceService/UpdateDevice` → `DeviceService/UpdateDevice`; status 7 → `PERMISSION_DENIED`. */
function row(e: AuditEvent): string[] {
  const outcome = e.statusCode === 0 ? "OK" : (Code[e.statusCode]?.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase() ?? String(e.statusCode));
  return [time(e.createTime), e.principal, e.method.replace(/^tether\.v1\./, ""), e.resource || "-", outcome, e.fieldPaths.join(",") || "-"];
}
