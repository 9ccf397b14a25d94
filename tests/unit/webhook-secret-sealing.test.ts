import type { PGlite } from "@electric-sql/pglite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTextSealer } from "../../src/core/auth/key-sealing.js";
import type { WebhookRecord } from "../../src/core/webhooks/webhook-record.js";
import type { Sql } from "../../src/store/database.js";
import { createWebhookRelay } from "../../src/core/webhooks/webhook-relay.js";
import { createWebhookStore } from "../../src/store/webhook-store.js";
import { inProcessSql, migratedPglite } from "../helpers/pglite-in-process.js";

const SECRET = "tether-tests-only-signing-key-secret-0123456789";
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

const record = (id: string, secret: string): WebhookRecord => ({
  id,
  uid: crypto.randomUUID(),
  displayName: "",
  url: "https://10.0.0.1/hook",
  eventTypes: ["device.created"],
  deviceFilter: "",
  payloadFormat: "json",
  disabled: false,
  secret,
  createTime: new Date(),
  updateTime: new Date(),
  revision: 1,
});
const raw = async (id: string) =>
  (await sql<{ secret: string; previous_secret: string | null }[]>`SELECT secret, previous_secret FROM webhooks WHERE id = ${id}`)[0]!;

describe("webhook secrets at rest", () => {
  it("are sealed in the database and open with the same secret, current and previous", async () => {
    const store = createWebhookStore(sql, createTextSealer(SECRET, "webhook-secret"));
    await store.insert(record("sealed", "whsec_current"));
    expect((await raw("sealed")).secret).toMatch(/^sealed:A256GCM:/);
    expect((await raw("sealed")).secret).not.toContain("whsec_current");
    const r = (await store.get("sealed"))!;
    expect(r.secret).toBe("whsec_current");
    await store.update({ ...r, secret: "whsec_next", previousSecret: "whsec_current", previousSecretExpireTime: new Date(Date.now() + 60_000), revision: 2 });
    const stored = await raw("sealed");
    expect(`${stored.secret} ${stored.previous_secret}`).not.toContain("whsec_");
    expect(await store.get("sealed")).toMatchObject({ secret: "whsec_next", previousSecret: "whsec_current" });
    expect((await store.listEnabled()).find((w) => w.id === "sealed")?.secret).toBe("whsec_next");
  });

  it("another secret opens nothing (the secret reads as empty, so nothing is signed with it); a row stored unsealed reads as it is", async () => {
    await createWebhookStore(sql, createTextSealer(SECRET, "webhook-secret")).insert(record("other", "whsec_x"));
    expect((await createWebhookStore(sql, createTextSealer("another-secret-of-32-characters-or-more", "webhook-secret")).get("other"))?.secret).toBe("");
    // Same secret, another purpose (a JWT signing key's derivation): no.
    expect((await createWebhookStore(sql, createTextSealer(SECRET, "jwt-signing-key")).get("other"))?.secret).toBe("");
    // Without a secret: stored and read as they are, and a sealed one cannot be opened.
    await createWebhookStore(sql).insert(record("plain", "whsec_plain"));
    expect((await raw("plain")).secret).toBe("whsec_plain");
    expect((await createWebhookStore(sql, createTextSealer(SECRET, "webhook-secret")).get("plain"))?.secret).toBe("whsec_plain");
    expect((await createWebhookStore(sql, createTextSealer(undefined, "webhook-secret")).get("other"))?.secret).toBe("");
  });

  it("the relay never sends with a secret it cannot open: the delivery fails with the reason", async () => {
    await createWebhookStore(sql, createTextSealer(SECRET, "webhook-secret")).insert(record("unopenable", "whsec_y"));
    const [event] = await sql<{ id: string }[]>`
      INSERT INTO webhook_events (type, time, resource, payload, fanned_out)
      VALUES ('device.created', now(), '{}'::jsonb, '{"type": "device.created"}'::jsonb, true) RETURNING id`;
    await sql`INSERT INTO webhook_deliveries (id, webhook_id, event_id, event_type, next_attempt_time, create_time)
              VALUES (${crypto.randomUUID()}, 'unopenable', ${event!.id}, 'device.created', now(), now())`;
    const sent: string[] = [];
    const relay = createWebhookRelay({
      // The replica's secret is another one.
      webhooks: createWebhookStore(sql, createTextSealer("another-secret-of-32-characters-or-more", "webhook-secret")),
      sender: { send: async (_k, req) => (sent.push(req.url), { status: 200 }), forget: () => {}, close: async () => {} },
      clock: { now: () => new Date() },
      log: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {}, child: () => undefined as never } as never,
      retry: { baseMs: 1000, maxMs: 1000, maxAttempts: 5, maxAgeMs: 86_400_000 },
      timeoutMs: 1000,
      concurrency: 4,
      breaker: { failures: 5, cooldownMs: 1000 },
      pollMs: 1000,
      retentionMs: 86_400_000,
    });
    await relay.runOnce();
    expect(sent).toEqual([]);
    const [d] = await sql<{ state: string; last_error: string }[]>`SELECT state, last_error FROM webhook_deliveries WHERE webhook_id = 'unopenable'`;
    expect(d).toEqual({ state: "FAILED", last_error: expect.stringContaining("signing secret cannot be opened") });
  });
});
