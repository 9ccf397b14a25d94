import { expect } from "vitest";
import { Aggregation } from "../../gen/tether/v1/telemetry_pb.js";
import type { TelemetryPointRecord, TelemetryQuery } from "../../src/core/ports/telemetry.js";
import type { SampleRecord } from "../../src/core/telemetry/sample.js";

const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
export const AGGREGATIONS = [Aggregation.UNSPECIFIED, Aggregation.AVG, Aggregation.MIN, Aggregation.MAX, Aggregation.SUM, Aggregation.COUNT, Aggregation.LAST];

/** Deterministic pseudo-random numbers (mulberry32), so a failure can be replayed. */
export function random(seed: number) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Samples of two metrics, with and without tags, over `spanMs` from `from`. Values are multiples
 * of 1/8 so every sum is exact in float64 and the rollups can be compared for equality, not
 * closeness (with arbitrary values, sums differ in the last bits by summation order, as two raw
 * queries may). Some samples of different tags share a time, to exercise LAST's tie-break.
 * `oddTags` adds tag values with tabs, newlines and backslashes (COPY's escapes).
 */
export function randomSamples(rnd: () => number, deviceId: string, from: number, spanMs: number, n: number, oddTags = false): SampleRecord[] {
  const out: SampleRecord[] = [];
  const rooms = oddTags ? ["a", "b\tc", "d\\e", "f\ng\r"] : ["a", "b"];
  for (let i = 0; i < n; i++) {
    const time = i > 0 && rnd() < 0.05 ? out[i - 1]!.time : new Date(from + Math.floor(rnd() * spanMs));
    const tags: Record<string, string> = rnd() < 0.3 ? {} : { room: rooms[Math.floor(rnd() * rooms.length)]! };
    out.push({ deviceId, metric: rnd() < 0.5 ? "temp" : "hum", time, value: Math.round((rnd() - 0.5) * 16_000) / 8, tags });
  }
  return out;
}

interface ComparableStore {
  query(q: TelemetryQuery): Promise<TelemetryPointRecord[]>;
  queryRaw(q: TelemetryQuery): Promise<TelemetryPointRecord[]>;
}

/**
 * Asserts that every aggregation, over bucket widths that use the rollups (multiples of a minute
 * or an hour) and some that do not, answers exactly what the raw samples answer. Returns the
 * number of queries compared.
 */
export async function expectRollupsEqualRaw(store: ComparableStore, deviceId: string, ranges: Array<[number, number]>): Promise<number> {
  const widths = [MIN, 5 * MIN, 7 * MIN, HOUR, 2 * HOUR, DAY, 90_000, 1000];
  let compared = 0;
  for (const [start, end] of ranges)
    for (const bucketMs of widths)
      for (const aggregation of AGGREGATIONS)
        for (const metrics of [[], ["temp"]]) {
          const q: TelemetryQuery = { deviceId, metrics, start: new Date(start), end: new Date(end), bucketMs, aggregation, limit: 100_000 };
          const want = await store.queryRaw(q);
          expect(want.length).toBeGreaterThan(0);
          expect(await store.query(q), `${new Date(start).toISOString()} +${bucketMs} ms, aggregation ${aggregation}, metrics [${metrics}]`).toEqual(want);
          compared++;
        }
  expect(compared).toBe(ranges.length * widths.length * AGGREGATIONS.length * 2);
  return compared;
}
