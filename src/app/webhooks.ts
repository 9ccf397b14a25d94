import { readFileSync } from "node:fs";
import { createTextSealer } from "../core/auth/key-sealing.js";
import { createWebhookRelay } from "../core/webhooks/webhook-relay.js";
import { createWebhookService } from "../core/webhooks/webhook-service.js";
import { createWebhookStore } from "../store/webhook-store.js";
import { createUrlPolicy } from "../webhooks/address-policy.js";
import { createHttpSender } from "../webhooks/http-sender.js";
import type { Infrastructure } from "./infrastructure.js";

/**
 * Webhooks: the subscription API and the relay that delivers the outbox (events written by the
 * database triggers of migration 1732300000019). The relay starts with `start()` and stops
 * before the database closes. Signing secrets are sealed at rest with `keySecret` (the JWT signing
 * keys' TETHER_SIGNING_KEY_SECRET, or the embedded data directory's generated one).
 */
export function createWebhooks(x: Infrastructure, keySecret: string | undefined) {
  const c = x.config.webhooks;
  const store = createWebhookStore(x.db.sql, createTextSealer(keySecret, "webhook-secret"));
  const ca = c.caFile ? [readFileSync(c.caFile, "utf8")] : undefined;
  const relay = createWebhookRelay({
    webhooks: store,
    sender: createHttpSender({ allowHttp: c.allowHttp, maxSockets: c.concurrency, ca }),
    clock: x.clock,
    log: x.log.child({ component: "webhooks" }),
    retry: { baseMs: c.backoffBaseMs, maxMs: c.backoffMaxMs, maxAttempts: c.maxAttempts, maxAgeMs: c.maxAgeMs },
    timeoutMs: c.timeoutMs,
    concurrency: c.concurrency,
    breaker: { failures: c.breakerFailures, cooldownMs: c.breakerCooldownMs },
    pollMs: c.pollMs,
    retentionMs: c.retentionMs,
  });
  const webhooks = createWebhookService({
    webhooks: store,
    urls: createUrlPolicy({ allowHttp: c.allowHttp }),
    clock: x.clock,
    onChanged: (id) => relay.changed(id),
  });
  return {
    webhooks,
    runWebhooks: () => relay.runOnce(),
    start() {
      relay.start();
      x.life.add({ name: "webhook relay", stop: () => relay.stop() });
    },
  };
}
