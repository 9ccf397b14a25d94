import type { Counters } from "./ports/index.js";

/** One counter series: a name, its labels and its value. */
export interface CounterEntry {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** In-memory counters keyed by name and sorted labels; read by tests and exported on /metrics. */
export function createCounters(): Counters & {
  get(name: string, labels?: Record<string, string>): number;
  snapshot(): Record<string, number>;
  entries(): CounterEntry[];
} {
  const values = new Map<string, number>();
  const series = new Map<string, { name: string; labels: Record<string, string> }>();
  const key = (name: string, labels: Record<string, string> = {}) => {
    const l = Object.entries(labels)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => `${k}="${v}"`)
      .join(",");
    return l ? `${name}{${l}}` : name;
  };
  return {
    inc(name, labels, by = 1) {
      const k = key(name, labels);
      if (!series.has(k)) series.set(k, { name, labels: { ...labels } });
      values.set(k, (values.get(k) ?? 0) + by);
    },
    get: (name, labels) => values.get(key(name, labels)) ?? 0,
    snapshot: () => Object.fromEntries(values),
    entries: () => [...series].map(([k, s]) => ({ ...s, value: values.get(k) ?? 0 })),
  };
}
