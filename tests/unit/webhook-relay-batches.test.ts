import type { PGlite } from "@electric-sql/pglite";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { WebhookRecord } from "../../src/core/webhooks/webhook-record.js";
import { createWebhookRelay } from "../../src/core/webhooks/webhook-relay.js";
import type { Sql } from "../../src/store/database.js";
import { createWebhookStore } from "../../src/store/webhook-store.js";
import { inProcessSql, migratedPglite } from "../helpers/pglite-in-process.js";

/**
 * The relay's send loop over the real store (PGlite in process) and a sender that counts what it
 * has in flight: batches through a window, statements per batch, the breaker's untried rest given
 * back.
 */
let db: PGlite;
let sql: Sql;
beforeAll(async () => {
  db = await migratedPglite();
  sql = inProcessSql(db);
});
afterAll(async () => {
  await sql.end();
  await db.close();
});
beforeEach(async () => {
  await sql`DELETE FROM webhook_deliveries`;
  await sql`DELETE FROM webhook_events`;
  await sql`DELETE FROM webhooks`;
});

const CONCURRENCY = 4;
const silent = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {}, child: () => undefined as never } as never;

async function subscriptionWithDeliveries(id: string, n: number): Promise<void> {
  const record: WebhookRecord = {
    id,
    uid: crypto.randomUUID(),
    displayName: "",
    url: `https://10.0.0.1/${id}`,
    eventTypes: ["device.created"],
    deviceFilter: "",
    payloadFormat: "json",
    disabled: false,
    secret: "whsec_test",
    createTime: new Date(),
    updateTime: new Date(),
    revision: 1,
  };
  await createWebhookStore(sql).insert(record);
  for (let i = 0; i < n; i++) {
    const [event] = await sql<{ id: string }[]>`
      INSERT INTO webhook_events (type, time, resource, payload, fanned_out)
      VALUES ('device.created', now(), '{}'::jsonb, ${sql.json({ type: "device.created", n: i })}, true) RETURNING id`;
    await sql`INSERT INTO webhook_deliveries (id, webhook_id, event_id, event_type, next_attempt_time, create_time)
              VALUES (${crypto.randomUUID()}, ${id}, ${event!.id}, 'device.created', now() - interval '1 second', now())`;
  }
}

/** A sender answering `status` after a macrotask, recording the most requests it had in flight. */
function countingSender(status: () => number) {
  const s = { inFlight: 0, maxInFlight: 0, sent: 0 };
  return {
    s,
    sender: {
      async send() {
        s.inFlight++;
        s.maxInFlight = Math.max(s.maxInFlight, s.inFlight);
        await new Promise((r) => setTimeout(r, 2));
        s.inFlight--;
        s.sent++;
        return { status: status() };
      },
      forget: () => {},
      close: async () => {},
    },
  };
}

function relayWith(sender: ReturnType<typeof countingSender>["sender"], extra: { failures?: number } = {}) {
  const store = createWebhookStore(sql);
  const calls = { claim: 0, record: 0, release: 0 };
  const webhooks = {
    ...store,
    claim: (...a: Parameters<typeof store.claim>) => (calls.claim++, store.claim(...a)),
    record: (...a: Parameters<typeof store.record>) => (calls.record++, store.record(...a)),
    release: (...a: Parameters<typeof store.release>) => (calls.release++, store.release(...a)),
  };
  const relay = createWebhookRelay({
    webhooks,
    sender,
    clock: { now: () => new Date() },
    log: silent,
    retry: { baseMs: 60_000, maxMs: 60_000, maxAttempts: 5, maxAgeMs: 86_400_000 },
    timeoutMs: 1000,
    concurrency: CONCURRENCY,
    breaker: { failures: extra.failures ?? 1000, cooldownMs: 60_000 },
    pollMs: 1000,
    retentionMs: 86_400_000,
  });
  return { relay, calls };
}

const states = async (id: string) =>
  Object.fromEntries(
    (await sql<{ state: string; n: number }[]>`SELECT state, count(*)::int AS n FROM webhook_deliveries WHERE webhook_id = ${id} GROUP BY state`).map((r) => [
      r.state,
      r.n,
    ]),
  );

describe("webhook relay batches", () => {
  it("sends 100 due deliveries through its window in a few batches of two statements each", async () => {
    await subscriptionWithDeliveries("batched", 100);
    const { s, sender } = countingSender(() => 200);
    const { relay, calls } = relayWith(sender);
    await relay.runOnce();
    expect(await states("batched")).toEqual({ DELIVERED: 100 });
    expect(s.maxInFlight).toBe(CONCURRENCY);
    // Batches of 4, 8, 16, 32, 32 (8 windows at most), then the last 8: far fewer than one claim per window (25).
    expect(calls.claim).toBe(6);
    expect(calls.record).toBe(6);
  });

  it("gives the untried rest of a batch back when the breaker opens: tries are counted only for what was sent", async () => {
    await subscriptionWithDeliveries("breaking", 20);
    const { s, sender } = countingSender(() => 503);
    const { relay, calls } = relayWith(sender, { failures: 2 });
    await relay.runOnce();
    // One window's worth went out (all lanes started before the second failure), the rest was released.
    expect(s.sent).toBeLessThanOrEqual(CONCURRENCY);
    expect(calls.release).toBeLessThanOrEqual(1);
    const rows = await sql<{ attempt_count: number; lease_until: Date | null; state: string }[]>`
      SELECT attempt_count, lease_until, state FROM webhook_deliveries WHERE webhook_id = 'breaking'`;
    expect(rows.filter((r) => r.attempt_count === 1).length).toBe(s.sent);
    expect(rows.filter((r) => r.state === "FAILED").length).toBe(s.sent);
    expect(rows.every((r) => r.attempt_count === 1 || (r.attempt_count === 0 && r.lease_until === null && r.state === "PENDING"))).toBe(true);
  });
});
