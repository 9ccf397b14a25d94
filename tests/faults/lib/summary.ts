import { appendFileSync, mkdirSync } from "node:fs";
import path from "node:path";

const OUT = path.resolve(import.meta.dirname, "../../../test-results/faults-summary.txt");

/** One scenario's figures: what was injected, what was sent, and what came out of it. */
export interface FaultSummary {
  scenario: string;
  injected: string;
  tasks?: number;
  samples?: number;
  lost: number;
  duplicated: number;
  /** From the end of the fault until the system was whole again (ms). */
  recoveryMs?: number;
  /** Anything else worth printing (e.g. peak RSS). */
  extra?: Record<string, string | number>;
}

/** Prints the summary line and appends it to test-results/faults-summary.txt. */
export function reportSummary(s: FaultSummary): string {
  const parts = [
    `[faults] ${s.scenario}`,
    `injected: ${s.injected}`,
    ...(s.tasks !== undefined ? [`tasks: ${s.tasks}`] : []),
    ...(s.samples !== undefined ? [`samples: ${s.samples}`] : []),
    `lost: ${s.lost}`,
    `duplicated: ${s.duplicated}`,
    ...(s.recoveryMs !== undefined ? [`recovery: ${(s.recoveryMs / 1000).toFixed(1)} s`] : []),
    ...Object.entries(s.extra ?? {}).map(([k, v]) => `${k}: ${v}`),
  ];
  const line = parts.join(" | ");
  console.log(line);
  mkdirSync(path.dirname(OUT), { recursive: true });
  appendFileSync(OUT, `${new Date().toISOString()} ${line}\n`);
  return line;
}
