import { parseArgs } from "node:util";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Aggregation } from "../../gen/tether/v1/telemetry_pb.js";
import { TelemetryService } from "../../gen/tether/v1/telemetry_service_pb.js";
import { connectClient } from "./client.js";
import { table } from "./format.js";
import { parseDuration } from "./task-args.js";

export const TELEMETRY_USAGE = `tether telemetry <command> [flags]

  query <device> [--metric M]... [--from 1h|ISO] [--to now|ISO] [--bucket 1m] [--agg avg|min|max|sum|count|last] [--csv]
        every page is fetched; --csv writes metric,time,value,count to stdout
  latest <device>
  stream <device>|- [--metric M]...`;

/** `--from 1h` (one hour ago), `--from 2026-11-23T08:00:00Z`, `now`. */
export function parseTime(v: string, now: number): Date {
  if (v === "now") return new Date(now);
  if (/^\d+(\.\d+)?(ms|s|m|h|d)$/.test(v)) {
    const d = parseDuration(v);
    return new Date(now - Number(d.seconds) * 1000 - d.nanos / 1e6);
  }
  const t = new Date(v);
  if (Number.isNaN(t.getTime())) throw new Error(`time ${v}: expected now, a duration ago (15m, 2h, 7d) or an ISO time`);
  return t;
}

/** `tether telemetry ...` */
export async function telemetryCommand(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  const { values: v, positionals: p } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      metric: { type: "string", multiple: true },
      from: { type: "string" },
      to: { type: "string" },
      bucket: { type: "string" },
      agg: { type: "string" },
      csv: { type: "boolean" },
      json: { type: "boolean" },
      address: { type: "string" },
      certs: { type: "string" },
    },
  });
  const client = connectClient(TelemetryService, { address: v.address, certsDir: v.certs });
  const target = p[0];
  if (!target) throw new Error(TELEMETRY_USAGE);
  const parent = target === "-" ? "devices/-" : target.startsWith("devices/") ? target : `devices/${target}`;
  switch (sub) {
    case "query": {
      const now = Date.now();
      const aggregation = v.agg ? (Aggregation as unknown as Record<string, Aggregation>)[v.agg.toUpperCase()] : Aggregation.UNSPECIFIED;
      if (aggregation === undefined) throw new Error(`--agg ${v.agg}: expected avg, min, max, sum, count or last`);
      const rows: string[][] = [];
      let pageToken = "";
      do {
        const res = await client.queryTelemetry({
          parent,
          metrics: v.metric ?? [],
          startTime: timestampFromDate(parseTime(v.from ?? "1h", now)),
          endTime: timestampFromDate(parseTime(v.to ?? "now", now)),
          bucketWidth: v.bucket ? parseDuration(v.bucket) : undefined,
          aggregation,
          pageSize: 10_000,
          pageToken,
        });
        for (const pt of res.points) rows.push([pt.metric, timestampDate(pt.time!).toISOString(), String(pt.value), String(pt.count)]);
        pageToken = res.nextPageToken;
      } while (pageToken);
      if (v.csv) {
        console.log(["metric,time,value,count", ...rows.map((r) => r.map(csvCell).join(","))].join("\n"));
      } else {
        console.log(table(["METRIC", "TIME", "VALUE", "COUNT"], rows));
      }
      return;
    }
    case "latest": {
      const res = await client.getLatestTelemetry({ parent });
      console.log(
        table(
          ["METRIC", "VALUE", "TIME", "TAGS"],
          res.samples.map((x) => [
            x.metric,
            String(x.value),
            timestampDate(x.time!).toISOString(),
            Object.entries(x.tags)
              .map(([k, t]) => `${k}=${t}`)
              .join(",") || "-",
          ]),
        ),
      );
      return;
    }
    case "stream":
      for await (const { sample } of client.streamTelemetry({ parent, metrics: v.metric ?? [] })) {
        if (sample) console.log(`${timestampDate(sample.time!).toISOString()}  ${sample.device.replace(/^devices\//, "")}  ${sample.metric}=${sample.value}`);
      }
      return;
    default:
      throw new Error(TELEMETRY_USAGE);
  }
}

function csvCell(s: string): string {
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}
