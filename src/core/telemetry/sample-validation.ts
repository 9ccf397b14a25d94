import type { SampleRecord } from "./sample.js";

/** Metric names: letters, digits, `_`, `.`, `-`, starting with a letter or digit; at most 64. */
export const METRIC_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;

export interface SampleLimits {
  /** Samples older than this are refused, ms. */
  maxAgeMs: number;
  /** Samples further in the future than this are refused (clock skew), ms. */
  maxFutureMs: number;
  /** Largest batch accepted; the excess is refused. */
  maxBatch: number;
  /** Distinct metrics a device may have; new metrics beyond it are refused. */
  maxMetricsPerDevice: number;
  maxTags: number;
}

export type RejectReason = "bad_metric" | "not_finite" | "too_old" | "in_future" | "batch_too_large" | "too_many_metrics" | "bad_tags";

/**
 * Splits a device's samples into what may be stored and what is refused, with a reason for each
 * refusal. A bad sample never costs the rest of its batch.
 */
export function validateSamples(
  samples: SampleRecord[],
  now: Date,
  limits: SampleLimits,
  knownMetrics: Set<string>,
): { accepted: SampleRecord[]; rejected: RejectReason[] } {
  const accepted: SampleRecord[] = [];
  const rejected: RejectReason[] = [];
  const t = now.getTime();
  for (const [i, s] of samples.entries()) {
    let reason: RejectReason | undefined;
    if (i >= limits.maxBatch) reason = "batch_too_large";
    else if (!METRIC_PATTERN.test(s.metric)) reason = "bad_metric";
    else if (!Number.isFinite(s.value)) reason = "not_finite";
    else if (Number.isNaN(s.time.getTime()) || s.time.getTime() < t - limits.maxAgeMs) reason = "too_old";
    else if (s.time.getTime() > t + limits.maxFutureMs) reason = "in_future";
    else if (Object.keys(s.tags).length > limits.maxTags || Object.entries(s.tags).some(([k, v]) => k.length > 64 || v.length > 256)) reason = "bad_tags";
    else if (!knownMetrics.has(s.metric)) {
      if (knownMetrics.size >= limits.maxMetricsPerDevice) reason = "too_many_metrics";
      else knownMetrics.add(s.metric);
    }
    if (reason) rejected.push(reason);
    else accepted.push(s);
  }
  return { accepted, rejected };
}
