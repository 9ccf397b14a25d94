import { create } from "@bufbuild/protobuf";
import { timestampDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { useMemo, useState } from "react";
import { Aggregation, AggregationSchema } from "../../../gen/tether/v1/telemetry_pb.js";
import { QueryTelemetryRequestSchema } from "../../../gen/tether/v1/telemetry_service_pb.js";
import type { MetricInfo } from "../../../src/core/products/index.js";
import { api } from "../api.js";
import { usePolling, useStream } from "../hooks.js";
import { Chart } from "./chart.js";
import { ErrorBanner } from "./error-banner.js";
import { EnumOptions } from "./enum-options.js";

const RANGES: Array<[string, number]> = [
  ["15 min", 15 * 60],
  ["1 hour", 3600],
  ["6 hours", 6 * 3600],
  ["24 hours", 86_400],
  ["7 days", 7 * 86_400],
];
/** Bucket widths in seconds; 0 is raw samples, -1 picks ~300 buckets for the range. */
const BUCKETS: Array<[string, number]> = [
  ["auto", -1],
  ["raw", 0],
  ["10 s", 10],
  ["1 min", 60],
  ["5 min", 300],
  ["1 hour", 3600],
];
/** The most points one chart loads (pages of 5,000). */
const MAX_POINTS = 50_000;

interface Series {
  xs: number[];
  ys: number[];
}

function autoBucket(rangeS: number): number {
  const w = rangeS / 300;
  return w <= 1 ? 0 : ([10, 60, 300, 900, 3600].find((b) => b >= w) ?? 3600);
}

/**
 * A device's telemetry: one chart per metric over the chosen range, bucket width and aggregation,
 * and, with the live tail on, new samples appended as StreamTelemetry delivers them. `metrics` (the
 * device's product's, from its product module) give units and axis bounds; other metrics still chart.
 */
export function TelemetryPanel({ device, metrics: known = [] }: { device: string; metrics?: readonly MetricInfo[] }) {
  const [range, setRange] = useState(900);
  const [bucket, setBucket] = useState(-1);
  const [agg, setAgg] = useState<Aggregation>(Aggregation.AVG);
  const [live, setLive] = useState(true);
  const width = bucket === -1 ? autoBucket(range) : bucket;
  const [series, setSeries] = useState<Record<string, Series>>({});

  const query = usePolling(
    async (signal) => {
      const end = Date.now();
      const out: Record<string, Series> = {};
      let pageToken = "";
      let n = 0;
      do {
        const req = create(QueryTelemetryRequestSchema, {
          parent: `devices/${device}`,
          startTime: timestampFromMs(end - range * 1000),
          endTime: timestampFromMs(end + 60_000),
          bucketWidth: width > 0 ? { seconds: BigInt(width) } : undefined,
          // Raw samples take no aggregation (the server refuses one without a bucket width).
          aggregation: width > 0 ? agg : Aggregation.UNSPECIFIED,
          pageSize: 5000,
          pageToken,
        });
        const res = await api.telemetry.queryTelemetry(req, { signal });
        for (const p of res.points) {
          const s = (out[p.metric] ??= { xs: [], ys: [] });
          s.xs.push(timestampDate(p.time!).getTime() / 1000);
          s.ys.push(p.value);
        }
        n += res.points.length;
        pageToken = res.nextPageToken;
      } while (pageToken && n < MAX_POINTS);
      setSeries(out);
      return n;
    },
    0,
    [device, range, width, agg],
  );

  // The live tail appends raw samples; with buckets on, the next re-query folds them into buckets.
  const stream = useStream(
    (signal) => (live ? api.telemetry.streamTelemetry({ parent: `devices/${device}` }, { signal }) : idle(signal)),
    (m) => {
      const s = m.sample;
      if (!s?.time) return;
      const t = timestampDate(s.time).getTime() / 1000;
      setSeries((prev) => {
        const cur = prev[s.metric] ?? { xs: [], ys: [] };
        const cutoff = Date.now() / 1000 - range;
        let from = 0;
        while (from < cur.xs.length && cur.xs[from]! < cutoff) from++;
        // uPlot wants x ascending: drop a sample older than the last point (rare: reordering).
        if (cur.xs.length && t < cur.xs[cur.xs.length - 1]!) return prev;
        return { ...prev, [s.metric]: { xs: [...cur.xs.slice(from), t], ys: [...cur.ys.slice(from), s.value] } };
      });
    },
    [device, live, range],
  );

  const metrics = useMemo(() => Object.keys(series).sort(), [series]);
  return (
    <section className="panel telemetry">
      <h2>Telemetry</h2>
      <div className="filters">
        <label>
          Range
          <select name="range" value={range} onChange={(e) => setRange(Number(e.target.value))}>
            {RANGES.map(([l, v]) => (
              <option key={v} value={v}>
                last {l}
              </option>
            ))}
          </select>
        </label>
        <label>
          Bucket
          <select name="bucket" value={bucket} onChange={(e) => setBucket(Number(e.target.value))}>
            {BUCKETS.map(([l, v]) => (
              <option key={v} value={v}>
                {l}
                {v === -1 ? ` (${width ? `${width} s` : "raw"})` : ""}
              </option>
            ))}
          </select>
        </label>
        <label>
          Aggregation
          <select name="aggregation" value={agg} disabled={width === 0} onChange={(e) => setAgg(Number(e.target.value))}>
            <EnumOptions of={AggregationSchema} />
          </select>
        </label>
        <label className="inline">
          <input type="checkbox" name="live" checked={live} onChange={(e) => setLive(e.target.checked)} /> live tail
        </label>
        <button type="button" onClick={query.reload}>
          Reload
        </button>
      </div>
      <ErrorBanner error={query.error ?? stream.error} showFields />
      {query.value !== undefined && metrics.length === 0 && <p className="muted">No telemetry in this range.</p>}
      <div className="charts">
        {metrics.map((m) => {
          const info = known.find((k) => k.name === m);
          return <Chart key={m} title={m} unit={info?.unit} min={info?.min} max={info?.max} xs={series[m]!.xs} ys={series[m]!.ys} />;
        })}
      </div>
    </section>
  );
}

/** A stream that yields nothing until aborted (live tail off). */
async function* idle(signal: AbortSignal): AsyncIterable<never> {
  await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
}
