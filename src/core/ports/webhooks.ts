import type { Event } from "../../../gen/tether/v1/event_pb.js";
import type { DeviceFacts } from "../webhooks/device-match.js";
import type { DeliveryRecord, DeliveryState, WebhookRecord } from "../webhooks/webhook-record.js";

/** An outbox event not yet fanned out, as the relay routes it. */
export interface PendingEvent {
  id: string;
  type: string;
  /** The event as delivered (built by the store from the changed row). */
  event: Event;
  /** The device a subscription's filter is evaluated on; undefined for events about no device. */
  facts?: DeviceFacts;
}

/** A claimed delivery with the body to send. */
export interface ClaimedDelivery extends DeliveryRecord {
  /** The Event as protobuf JSON text, sent as it is (no parse and re-serialize per subscription). */
  payload: string;
}

/** A send's outcome, written back in one statement per batch. */
export interface DeliveryOutcome {
  id: string;
  state: Exclude<DeliveryState, "PENDING">;
  lastStatus: number;
  lastError: string;
  nextAttemptTime?: Date;
  endTime?: Date;
}

/** Subscriptions and their outbox in the database. */
export interface WebhookRepository {
  insert(r: WebhookRecord): Promise<WebhookRecord>;
  get(id: string): Promise<WebhookRecord | undefined>;
  list(q: { afterId?: string; limit: number }): Promise<WebhookRecord[]>;
  /** Writes `r` if the stored revision is still `r.revision - 1`; undefined if not (a concurrent change). */
  update(r: WebhookRecord): Promise<WebhookRecord | undefined>;
  /** Deletes it (and its deliveries); false if missing or `revision` (when given) no longer matches. */
  delete(id: string, revision?: number): Promise<boolean>;
  /** Every enabled subscription: the relay's routing table (subscriptions are few). */
  listEnabled(): Promise<WebhookRecord[]>;
  /** Every subscription with deliveries due at `now` (disabled ones included: pending deliveries keep being tried). */
  withDueDeliveries(now: Date): Promise<string[]>;
  listDeliveries(webhookId: string, q: { state?: DeliveryState; before?: { time: Date; id: string }; limit: number }): Promise<DeliveryRecord[]>;
  /** Makes a DEAD delivery PENDING again with a fresh attempt budget; "not-dead" if it is in another state. */
  replay(webhookId: string, id: string, now: Date): Promise<DeliveryRecord | "not-dead" | undefined>;
  /**
   * Claims up to `limit` events not yet fanned out (FOR UPDATE SKIP LOCKED) and, in the same
   * transaction, creates a delivery per subscription id `route` returns for each, due at `now`.
   * Returns how many events it took.
   */
  fanOut(limit: number, now: Date, route: (e: PendingEvent, subscriptions: readonly WebhookRecord[]) => readonly string[]): Promise<number>;
  /** Leases up to `limit` due deliveries of one subscription until `leaseUntil`; counts the try. */
  claim(webhookId: string, limit: number, now: Date, leaseUntil: Date): Promise<ClaimedDelivery[]>;
  record(outcomes: readonly DeliveryOutcome[]): Promise<void>;
  /** Gives claimed deliveries back untried (lease dropped, the try not counted). */
  release(ids: readonly string[]): Promise<void>;
  /** Marks PENDING/FAILED deliveries created before `before` DEAD ("maximum age"); returns how many. */
  expire(before: Date, now: Date): Promise<number>;
  /** Deletes DELIVERED deliveries ended before `before`, and events no delivery refers to any more. */
  prune(before: Date): Promise<number>;
}

/** One HTTP request of a delivery. */
export interface WebhookRequest {
  url: string;
  headers: Record<string, string>;
  body: Uint8Array;
  timeoutMs: number;
}

/** Sends webhook requests (node:https); rejects on no answer, resolves with the status otherwise. */
export interface WebhookSender {
  send(subscriptionKey: string, req: WebhookRequest): Promise<{ status: number }>;
  /** Drops a subscription's connections (deleted or changed). */
  forget(subscriptionKey: string): void;
  close(): Promise<void>;
}

/** Where webhook URLs may point: the reason a URL is refused, or undefined. Resolves host names. */
export interface UrlPolicy {
  check(url: string): Promise<string | undefined>;
}
