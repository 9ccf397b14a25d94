import type { Counters } from "./ports.js";

/** In-memory counters keyed by name and sorted labels; read by tests and (later) /metrics. */
export function createCounters(): Counters & { get(name: string, labels?: Record<string, string>): number; snapshot(): Record<string, number> } {
  const values = new Map<string, number>();
  const key = (name: string, labels: Record<string, string> = {}) => {
    const l = Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}="${v}"`).join(",");
    return l ? `${name}{${l}}` : name;
  };
  return {
    inc(name, labels, by = 1) {
      const k = key(name, labels);
      values.set(k, (values.get(k) ?? 0) + by);
    },
    get: (name, labels) => values.get(key(name, labels)) ?? 0,
    snapshot: () => Object.fromEntries(values),
  };
}
