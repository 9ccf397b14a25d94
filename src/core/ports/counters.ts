/** Counters for things worth alerting on (dropped uplink, late events). Exported as metrics later. */
export interface Counters {
  inc(name: string, labels?: Record<string, string>, by?: number): void;
}
