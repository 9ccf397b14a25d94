import type { Client } from "@connectrpc/connect";
import { type ConnectivityEvent, ConnectivityEvent_Reason, ConnectivityEvent_Type } from "../../gen/tether/v1/connectivity_pb.js";
import { type DeviceService, ListConnectivityEventsResponseSchema } from "../../gen/tether/v1/device_service_pb.js";
import { json, table, time } from "./format.js";

/** `connected` / `disconnected`. */
export function eventTypeWord(e: ConnectivityEvent): string {
  return (ConnectivityEvent_Type[e.type] ?? "unspecified").toLowerCase();
}

/** The reason as the README names it: `keepalive_timeout`, `certificate_revoked`, … */
export function reasonWord(e: ConnectivityEvent): string {
  return (ConnectivityEvent_Reason[e.reason] ?? "unspecified").toLowerCase();
}

/** One line for `devices get`: `disconnected (keepalive_timeout) at …`. */
export function lastEventText(e: ConnectivityEvent | undefined): string {
  return e ? `${eventTypeWord(e)} (${reasonWord(e)}) at ${time(e.eventTime)}${e.remoteAddress ? ` from ${e.remoteAddress}` : ""}` : "-";
}

/** `tether devices connectivity <id>`: the device's connects and disconnects, newest first. */
export async function printConnectivity(
  client: Client<typeof DeviceService>,
  parent: string,
  v: { json?: boolean; "page-size"?: string; "page-token"?: string },
): Promise<void> {
  const res = await client.listConnectivityEvents({ parent, pageSize: Number(v["page-size"] ?? 0), pageToken: v["page-token"] ?? "" });
  if (v.json) return console.log(json(ListConnectivityEventsResponseSchema, res));
  const rows = res.connectivityEvents.map((e) => [time(e.eventTime), eventTypeWord(e), reasonWord(e), e.remoteAddress || "-"]);
  console.log(table(["TIME", "EVENT", "REASON", "REMOTE ADDRESS"], rows));
  if (res.nextPageToken) console.log(`\nmore: --page-token ${res.nextPageToken}`);
}
