import type { Aggregation } from "../../../gen/tether/v1/telemetry_pb.js";
import type { SampleRecord } from "../telemetry/sample.js";

/** Where samples are kept: raw rows, 1-minute and 1-hour rollups, each with its own retention. */
export type TelemetryTier = "raw" | "1m" | "1h";

export interface TelemetryQuery {
  deviceId: string;
  metrics: string[];
  start: Date;
  end: Date;
  /** 0 = raw samples. */
  bucketMs: number;
  aggregation: Aggregation;
  /** Continue after this (metric, time) key. */
  after?: { metric: string; time: Date };
  limit: number;
}

export interface TelemetryPointRecord {
  metric: string;
  time: Date;
  value: number;
  count: number;
}

/** Storage of samples (PostgreSQL/PGlite adapter in `src/store/telemetry-store.ts`). */
export interface TelemetryRepository {
  /**
   * Inserts samples idempotently (a repeated sample is ignored) and adds the new ones to the
   * rollups in the same transaction; returns how many were new.
   */
  insert(samples: SampleRecord[]): Promise<number>;
  /** Raw samples, or buckets (from the rollups when the width is a multiple of a tier, with the same results). */
  query(q: TelemetryQuery): Promise<TelemetryPointRecord[]>;
  latest(deviceId: string): Promise<SampleRecord[]>;
  /** Creates the partitions (samples and both rollup tiers) covering [from, to). */
  ensurePartitions(from: Date, to: Date): Promise<void>;
  /** Drops the partitions of one tier whose whole range is before `before`; returns their names. @default tier "raw" */
  dropPartitionsBefore(before: Date, tier?: TelemetryTier): Promise<string[]>;
}

/** A message of the telemetry queue: a batch to store, acknowledged only after it is committed. */
export interface QueuedBatch {
  samples: SampleRecord[];
  ack(): void;
  /** Puts the batch back at the front of the queue (the database failed). */
  nack(): void;
}

/**
 * The durable queue between ingestion and the writer: in-process in embedded mode, RabbitMQ in
 * production. At-least-once: a batch stays until acked.
 */
export interface TelemetryQueue {
  /** Enqueues samples; false if the queue is full (the caller counts the refusal). */
  push(samples: SampleRecord[]): boolean;
  /** Waits up to `waitMs` for samples and returns up to `max` of them as one batch (or undefined). */
  take(max: number, waitMs: number): Promise<QueuedBatch | undefined>;
  depth(): number;
  /**
   * Resolves once every sample pushed before this call has been acked (stored). A durable uplink
   * queue waits for it before acknowledging a message that carried telemetry, so nothing is
   * acknowledged to the broker before it is in the database.
   */
  committed(): Promise<void>;
}
