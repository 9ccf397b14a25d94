import { fromJsonString, toBinary } from "@bufbuild/protobuf";
import { EventSchema } from "../../../gen/tether/v1/event_pb.js";
import type { Clock } from "../clock.js";
import { type DeviceFilter, parseDeviceFilter } from "../devices/device-filter.js";
import type { CoreLogger } from "../log.js";
import type { ClaimedDelivery, DeliveryOutcome, PendingEvent, WebhookRepository, WebhookSender } from "../ports/webhooks.js";
import { createTickLoop } from "../tick-loop.js";
import { isExhausted, type RetryPolicy, retryDelayMs } from "./backoff.js";
import { createCircuitBreaker } from "./circuit-breaker.js";
import { matchesDeviceFilter } from "./device-match.js";
import { signatureHeader } from "./signature.js";
import { signingSecrets, type WebhookRecord } from "./webhook-record.js";

export interface WebhookRelayOptions {
  webhooks: WebhookRepository;
  sender: WebhookSender;
  clock: Clock;
  log: CoreLogger;
  retry: RetryPolicy;
  timeoutMs: number;
  /** Requests in flight per subscription. */
  concurrency: number;
  breaker: { failures: number; cooldownMs: number };
  pollMs: number;
  retentionMs: number;
  /** Events fanned out per transaction. @default 500 */
  fanOutBatch?: number;
  /**
   * Most deliveries one subscription's worker claims, sends and records as a batch. A batch's lease
   * covers its rounds of `concurrency` requests at `timeoutMs` each, so this bounds how long a
   * replica that dies mid-batch keeps its deliveries from the others. @default 8 × concurrency
   */
  claimBatch?: number;
}

interface Route {
  record: WebhookRecord;
  types: Set<string>;
  filter: DeviceFilter;
}

const HOUSEKEEPING_MS = 10_000;

const toRoute = (record: WebhookRecord): Route => ({ record, types: new Set(record.eventTypes), filter: parseDeviceFilter(record.deviceFilter) });

/**
 * The webhook relay: fans outbox events out to subscriptions, then sends each subscription's due
 * deliveries from its own worker. Isolation: a subscription's worker has at most `concurrency`
 * requests in flight and its own circuit breaker, and the loop never waits for a worker, so a
 * slow or dead endpoint holds back only its own deliveries. Replicas share the work through the
 * database (SKIP LOCKED fan-out, leased claims), never sending one delivery twice at once.
 */
export function createWebhookRelay(o: WebhookRelayOptions) {
  let routes: Route[] = [];
  let routesKey = "";
  let routesLoaded = 0;
  let lastHousekeeping = 0;
  const workers = new Map<string, Promise<void>>();
  const breakers = new Map<string, ReturnType<typeof createCircuitBreaker>>();
  const known = new Map<string, WebhookRecord>();
  let stopping = false;

  async function loadRoutes(): Promise<void> {
    const enabled = await o.webhooks.listEnabled();
    routes = enabled.map(toRoute);
    routesKey = enabled.map((r) => `${r.id}:${r.revision}`).join(",");
    known.clear();
    for (const r of enabled) known.set(r.id, r);
    routesLoaded = Date.now();
  }

  /**
   * Routes by the subscriptions the fan-out transaction read (another replica's new subscription
   * included), parsing each filter once per revision.
   */
  function route(e: PendingEvent, subscriptions: readonly WebhookRecord[]): string[] {
    const key = subscriptions.map((r) => `${r.id}:${r.revision}`).join(",");
    if (key !== routesKey) {
      const parsed = new Map(routes.map((r) => [`${r.record.id}:${r.record.revision}`, r]));
      routes = subscriptions.map((record) => parsed.get(`${record.id}:${record.revision}`) ?? toRoute(record));
      routesKey = key;
      for (const r of subscriptions) known.set(r.id, r);
    }
    return routes.filter((r) => r.types.has(e.type) && (!e.facts || matchesDeviceFilter(r.filter, e.facts))).map((r) => r.record.id);
  }

  function breakerOf(id: string) {
    let b = breakers.get(id);
    if (!b) breakers.set(id, (b = createCircuitBreaker({ ...o.breaker, maxCooldownMs: Math.max(o.breaker.cooldownMs, 600_000) })));
    return b;
  }

  async function step(): Promise<number> {
    if (Date.now() - routesLoaded > 5000) await loadRoutes();
    const batch = o.fanOutBatch ?? 500;
    while (!stopping && (await o.webhooks.fanOut(batch, o.clock.now(), route)) === batch) {}
    const now = o.clock.now();
    if (now.getTime() - lastHousekeeping > HOUSEKEEPING_MS) {
      lastHousekeeping = now.getTime();
      const dead = await o.webhooks.expire(new Date(now.getTime() - o.retry.maxAgeMs), now);
      if (dead > 0) o.log.warn({ dead }, "webhook deliveries reached their maximum age: DEAD");
      await o.webhooks.prune(new Date(now.getTime() - o.retentionMs));
    }
    for (const id of await o.webhooks.withDueDeliveries(now)) {
      if (!workers.has(id) && !stopping) {
        const w = work(id).finally(() => workers.delete(id));
        workers.set(id, w);
      }
    }
    return o.pollMs;
  }

  /**
   * One subscription's sends until nothing is due or its breaker opens. A claim takes a batch of
   * up to `claimBatch` deliveries (one statement), sends them through a window of `concurrency`
   * requests in flight, and records every outcome in one statement: two statements per batch,
   * not per window (embedded, they share the one database connection with the task path). The
   * batch grows (to `claimBatch`) while sends succeed and falls back to one window on a failure,
   * so a failing endpoint's lease never covers more than a window's worth of timeouts at a time.
   */
  async function work(id: string): Promise<void> {
    try {
      const record = known.get(id) ?? (await o.webhooks.get(id));
      if (!record) return;
      const breaker = breakerOf(id);
      let size = o.concurrency;
      while (!stopping) {
        const now = o.clock.now();
        const n = breaker.allowance(Date.now(), size);
        if (n === 0) return;
        const rounds = Math.ceil(n / o.concurrency);
        const claimed = await o.webhooks.claim(id, n, now, new Date(now.getTime() + rounds * (o.timeoutMs + 1000) + 5000));
        if (claimed.length === 0) return;
        const outcomes: DeliveryOutcome[] = [];
        const unsent: string[] = [];
        let next = 0;
        // A half-open breaker lets exactly its one probe through.
        let probe = breaker.closed() ? 0 : 1;
        const lane = async () => {
          while (next < claimed.length) {
            const d = claimed[next++]!;
            // Once the breaker opens, what is left of the batch goes back untried.
            if (stopping || (!breaker.closed() && probe-- <= 0)) {
              unsent.push(d.id);
              continue;
            }
            const out = await send(record, d);
            breaker.record(out.state === "DELIVERED", Date.now());
            outcomes.push(out);
          }
        };
        await Promise.all(Array.from({ length: Math.min(o.concurrency, claimed.length) }, lane));
        await o.webhooks.record(outcomes);
        if (unsent.length > 0) await o.webhooks.release(unsent);
        const allDelivered = outcomes.length === claimed.length && outcomes.every((x) => x.state === "DELIVERED");
        size = allDelivered ? Math.min(size * 2, o.claimBatch ?? 8 * o.concurrency) : o.concurrency;
        if (breaker.isOpen(Date.now())) o.log.warn({ webhook: id }, "webhook endpoint keeps failing: circuit open, retrying later");
        if (claimed.length < n) return;
      }
    } catch (err) {
      o.log.error({ err, webhook: id }, "webhook worker failed");
    }
  }

  async function send(w: WebhookRecord, d: ClaimedDelivery): Promise<DeliveryOutcome> {
    const now = o.clock.now();
    const binary = w.payloadFormat === "binary";
    const body = binary ? toBinary(EventSchema, fromJsonString(EventSchema, d.payload)) : Buffer.from(d.payload);
    const t = Math.floor(now.getTime() / 1000);
    let status = 0;
    let error = "";
    try {
      // Sealed with another TETHER_SIGNING_KEY_SECRET: an unsigned request would only be refused.
      if (w.secret === "") throw new Error("the signing secret cannot be opened (TETHER_SIGNING_KEY_SECRET changed?): rotate it");
      ({ status } = await o.sender.send(w.id, {
        url: w.url,
        timeoutMs: o.timeoutMs,
        body,
        headers: {
          "content-type": binary ? "application/x-protobuf" : "application/json",
          "tether-event-id": d.eventId,
          "tether-event-type": d.eventType,
          "tether-delivery-attempt": String(d.attemptCount),
          "tether-signature": signatureHeader(signingSecrets(w, now), t, body),
        },
      }));
      if (status >= 200 && status < 300) return { id: d.id, state: "DELIVERED", lastStatus: status, lastError: "", endTime: o.clock.now() };
      error = `HTTP ${status}`;
    } catch (err) {
      error = (err as Error).message.slice(0, 200);
    }
    const end = o.clock.now();
    if (isExhausted(o.retry, d.attemptCount, d.createTime, end)) return { id: d.id, state: "DEAD", lastStatus: status, lastError: error, endTime: end };
    return {
      id: d.id,
      state: "FAILED",
      lastStatus: status,
      lastError: error,
      nextAttemptTime: new Date(end.getTime() + retryDelayMs(o.retry, d.attemptCount)),
    };
  }

  const loop = createTickLoop(step, { defaultDelayMs: o.pollMs, onError: (err) => o.log.error({ err }, "webhook relay step failed") });

  return {
    start: () => loop.start(),
    /** A subscription changed: reload the routing table and look for work now. */
    changed(id?: string): void {
      routesLoaded = 0;
      if (id) {
        known.delete(id);
        o.sender.forget(id);
      }
      loop.wake();
    },
    wake: () => loop.wake(),
    /** Runs one pass now and waits for the workers it started (tests). */
    async runOnce(): Promise<void> {
      routesLoaded = 0;
      await step();
      await Promise.all(workers.values());
    },
    async stop(): Promise<void> {
      stopping = true;
      await loop.stop();
      await Promise.all(workers.values());
      await o.sender.close();
    },
  };
}
