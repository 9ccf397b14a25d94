import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { EventSchema } from "../../gen/tether/v1/event_pb.js";
import { Task_State } from "../../gen/tether/v1/task_pb.js";
import { TaskService } from "../../gen/tether/v1/task_service_pb.js";
import { Webhook_PayloadFormat, WebhookDelivery_State } from "../../gen/tether/v1/webhook_pb.js";
import { WebhookService } from "../../gen/tether/v1/webhook_service_pb.js";
import { type DevPki, ensureDevPki } from "../../src/pki/dev-pki.js";
import { eventually } from "./devices.js";
import { bearerClient, userToken } from "./auth.js";
import { connectClient, startTestStack, type TestStack } from "./stack.js";
import { type Receiver, startReceiver } from "./webhook-receiver.js";

/**
 * Where a suite's Tether keeps its data: PGlite (no DATABASE_URL) or a fresh PostgreSQL database.
 * `env` is added to the stack's environment; `cleanup` runs after it stopped.
 */
export type SuiteDatabase = () => Promise<{ env: Record<string, string>; cleanup(): Promise<void> }>;

export const embedded: SuiteDatabase = async () => ({ env: {}, cleanup: async () => {} });

/** One suite's Tether with a dev PKI whose CA the webhook sender trusts, and local HTTPS receivers. */
function webhookStack(database: SuiteDatabase, env: Record<string, string>) {
  const x = { s: undefined as unknown as TestStack, pki: undefined as unknown as DevPki };
  let pkiDir: string;
  let db: Awaited<ReturnType<SuiteDatabase>>;
  const receivers: Receiver[] = [];
  beforeAll(async () => {
    db = await database();
    pkiDir = await mkdtemp(path.join(tmpdir(), "tether-webhook-pki-"));
    x.pki = await ensureDevPki(pkiDir);
    x.s = await startTestStack({ ...db.env, TETHER_CERTS_DIR: pkiDir, TETHER_WEBHOOK_CA_FILE: path.join(pkiDir, "ca.crt"), ...env });
  }, 60_000);
  afterAll(async () => {
    for (const r of receivers) await r.close();
    await x.s?.cleanup();
    await db?.cleanup();
    if (pkiDir) await rm(pkiDir, { recursive: true, force: true });
  });
  return {
    get s() {
      return x.s;
    },
    hooks: () => connectClient(x.s, WebhookService, "connect"),
    devices: () => connectClient(x.s, DeviceService, "connect"),
    async receiver(): Promise<Receiver> {
      const r = await startReceiver({ cert: x.pki.server.certPem, key: x.pki.server.keyPem });
      receivers.push(r);
      return r;
    },
  };
}

/** Delivery end to end: signatures, formats, filters, rotation, retries, isolation, replay. */
export function describeWebhookDelivery(database: SuiteDatabase): void {
  describe("webhooks: delivery", () => {
    // Short, configurable back-off so "down for a while" and "dead" take about a second, not minutes.
    // TETHER_WEBHOOK_ALLOW_HTTP=1 because the receivers listen on loopback (the SSRF rule refuses it otherwise).
    const stack = webhookStack(database, {
      TETHER_WEBHOOK_ALLOW_HTTP: "1",
      TETHER_WEBHOOK_BACKOFF_BASE_MS: "20",
      TETHER_WEBHOOK_BACKOFF_MAX_MS: "150",
      TETHER_WEBHOOK_MAX_ATTEMPTS: "12",
      // The breaker (unit-tested) would make the dead endpoint wait for its max age; here attempts run out first.
      TETHER_WEBHOOK_BREAKER_FAILURES: "1000",
      TETHER_WEBHOOK_BREAKER_COOLDOWN_MS: "100",
      TETHER_WEBHOOK_POLL_MS: "20",
      TETHER_WEBHOOK_TIMEOUT_MS: "60000",
    });
    const { hooks, devices } = stack;
    const receiver = () => stack.receiver();
    async function subscribe(id: string, r: Receiver, extra: { eventTypes?: string[]; deviceFilter?: string; payloadFormat?: Webhook_PayloadFormat } = {}) {
      const w = await hooks().createWebhook({
        webhookId: id,
        webhook: {
          url: r.url,
          eventTypes: extra.eventTypes ?? ["device.created", "device.updated"],
          deviceFilter: extra.deviceFilter ?? "",
          payloadFormat: extra.payloadFormat,
        },
      });
      r.secrets.push(w.secret);
      return w;
    }
    const led = (deviceId: string, labels: Record<string, string>) =>
      devices().createDevice({ deviceId, device: { labels, kind: { case: "led", value: {} } } });

    describe("webhooks", () => {
      it("delivers signed protobuf JSON, only for the subscribed types and the device filter; the secret is shown once", async () => {
        const r = await receiver();
        const w = await subscribe("signed", r, { deviceFilter: 'labels.team = "signed"' });
        expect(w.secret).toMatch(/^whsec_/);
        expect((await hooks().getWebhook({ name: "webhooks/signed" })).secret).toBe("");
        await led("sig-1", { team: "signed" });
        await led("sig-other", { team: "other" });
        await devices().updateDevice({ device: { name: "devices/sig-1", displayName: "renamed" }, updateMask: { paths: ["display_name"] } });
        await eventually(async () => r.received.length >= 2, 8000, "two events");
        expect(r.received.map((x) => x.type)).toEqual(["device.created", "device.updated"]);
        expect(r.received.every((x) => x.verified && x.contentType === "application/json")).toBe(true);
        const body = JSON.parse(r.received[1]!.body.toString());
        expect(body).toMatchObject({ id: r.received[1]!.eventId, type: "device.updated", device: "devices/sig-1", deviceSnapshot: { displayName: "renamed" } });
        // A tampered body does not verify.
        const { verifySignature } = await import("../../src/core/webhooks/signature.js");
        expect(verifySignature(r.received[0]!.signature, w.secret, Buffer.from("{}"), Math.floor(Date.now() / 1000))).toBe(false);
      });

      it("task state changes as binary protobuf; a rotation signs with both secrets until the old one expires", async () => {
        const r = await receiver();
        const w = await subscribe("tasks-bin", r, {
          eventTypes: ["task.state_changed"],
          deviceFilter: 'labels.team = "tasks"',
          payloadFormat: Webhook_PayloadFormat.BINARY,
        });
        await led("task-1", { team: "tasks" });
        const tasks = connectClient(stack.s, TaskService, "connect");
        const t = await tasks.createTask({
          parent: "devices/task-1",
          task: { command: { kind: { case: "led", value: { action: { case: "setPower", value: true } } } } },
        });
        await eventually(async () => r.received.length >= 1, 8000, "QUEUED event");
        const oldSecret = w.secret;
        const rotated = await hooks().rotateWebhookSecret({ name: "webhooks/tasks-bin" });
        expect(rotated.secret).not.toBe(oldSecret);
        expect(rotated.previousSecretExpireTime).toBeDefined();
        await tasks.cancelTask({ name: t.name });
        await eventually(async () => r.received.length >= 2, 8000, "CANCELED event");
        const states = r.received.map((x) => fromBinary(EventSchema, x.body)).map((e) => (e.payload.case === "task" ? e.payload.value.state : undefined));
        expect(states).toEqual([Task_State.QUEUED, Task_State.CANCELED]);
        expect(r.received[1]!.contentType).toBe("application/x-protobuf");
        // Both secrets verify the request made during the rotation.
        const { verifySignature } = await import("../../src/core/webhooks/signature.js");
        const now = Math.floor(Date.now() / 1000);
        expect(verifySignature(r.received[1]!.signature, oldSecret, r.received[1]!.body, now)).toBe(true);
        expect(verifySignature(r.received[1]!.signature, rotated.secret, r.received[1]!.body, now)).toBe(true);
      });

      it("a receiver that is down for a while gets every event afterwards, once each by idempotency id", async () => {
        const r = await receiver();
        // Every event's first three tries meet the outage (503), whenever they happen; the fourth succeeds.
        // (A receiver switched back by the test would race the back-off: on a slow machine the first
        // device's event could run out of attempts while the twentieth device was still being created.)
        const OUTAGE = 3;
        r.failFirst = OUTAGE;
        await subscribe("flaky", r, { deviceFilter: 'labels.team = "flaky"' });
        const N = 20;
        for (let i = 0; i < N; i++) await led(`flaky-${i}`, { team: "flaky" });
        const delivered = await eventually(
          async () => {
            const page = await hooks().listWebhookDeliveries({ parent: "webhooks/flaky", state: WebhookDelivery_State.DELIVERED, pageSize: 100 });
            return page.deliveries.length === N && page.deliveries;
          },
          30_000,
          "every delivery DELIVERED",
        );
        // The failed tries were counted: each delivery took the outage's tries plus the one that succeeded.
        expect(delivered.map((d) => d.attemptCount)).toEqual(Array(N).fill(OUTAGE + 1));
        expect(r.ids().size).toBe(N);
        expect(r.received.every((x) => x.verified)).toBe(true);
        // Each event was tried in order (attempt 1, 2, 3 refused, 4 answered 200) and answered 200 exactly once.
        for (const id of r.ids()) {
          const tries = r.received.filter((x) => x.eventId === id);
          expect(tries.map((x) => [x.attempt, x.answer])).toEqual([
            [1, 503],
            [2, 503],
            [3, 503],
            [4, 200],
          ]);
        }
        const dead = await hooks().listWebhookDeliveries({ parent: "webhooks/flaky", state: WebhookDelivery_State.DEAD });
        expect(dead.deliveries).toEqual([]);
      });

      it("a dead receiver's deliveries go DEAD, another subscription is not slowed, and replay delivers", async () => {
        const dead = await receiver();
        dead.mode = 500;
        const hung = await receiver();
        hung.mode = "hang";
        const healthy = await receiver();
        await subscribe("dead", dead, { deviceFilter: 'labels.team = "iso"' });
        await subscribe("hung", hung, { deviceFilter: 'labels.team = "iso"' });
        await subscribe("healthy", healthy, { deviceFilter: 'labels.team = "iso"' });
        const N = 30;
        for (let i = 0; i < N; i++) await led(`iso-${i}`, { team: "iso" });
        // The healthy endpoint gets everything while the hung one still holds its first requests open
        // (its timeout is a minute): nothing of the healthy subscription waits for it.
        await eventually(async () => healthy.ids().size === N, 15_000, "healthy subscription's events");
        expect(hung.hanging()).toBeGreaterThan(0);
        expect(hung.hanging()).toBeLessThanOrEqual(8); // TETHER_WEBHOOK_CONCURRENCY's default
        const deadList = await eventually(
          async () => {
            const page = await hooks().listWebhookDeliveries({ parent: "webhooks/dead", state: WebhookDelivery_State.DEAD, pageSize: 100 });
            return page.deliveries.length === N && page.deliveries;
          },
          20_000,
          "every dead delivery DEAD",
        );
        expect(deadList[0]).toMatchObject({ lastStatus: 500, lastError: "HTTP 500", attemptCount: 12 });
        dead.mode = 200;
        const before = dead.received.length;
        const replayed = await hooks().replayWebhookDelivery({ name: deadList[0]!.name });
        expect(replayed.state).toBe(WebhookDelivery_State.PENDING);
        await eventually(async () => dead.received.length > before && dead.received.at(-1)!.eventId === deadList[0]!.eventId, 8000, "replayed delivery");
        await eventually(async () => {
          const page = await hooks().listWebhookDeliveries({ parent: "webhooks/dead", state: WebhookDelivery_State.DELIVERED });
          return page.deliveries.length === 1;
        });
        // Replaying what is not DEAD is refused.
        await expect(hooks().replayWebhookDelivery({ name: deadList[0]!.name })).rejects.toMatchObject({ code: Code.FailedPrecondition });
      });

      it("names unknown event types and bad filters in INVALID_ARGUMENT", async () => {
        const err = await hooks()
          .createWebhook({
            webhookId: "bad",
            webhook: { url: "https://example.invalid/", eventTypes: ["task.state_changed", "task.exploded"], deviceFilter: "colour = red" },
          })
          .catch((e) => ConnectError.from(e));
        expect(err).toBeInstanceOf(ConnectError);
        expect((err as ConnectError).code).toBe(Code.InvalidArgument);
        expect((err as ConnectError).message).toContain('webhook.event_types[1]: unknown event type "task.exploded"');
        expect((err as ConnectError).message).toContain("webhook.device_filter");
      });
    });
  });
}

/**
 * The circuit breaker at its production setting (5 failures, 30 s cooldown): a dead endpoint gets
 * a few requests, then none; its deliveries still end DEAD by maximum age, and a healthy
 * subscription on the same relay gets everything meanwhile.
 */
export function describeWebhookBreaker(database: SuiteDatabase): void {
  describe("webhooks, circuit breaker", () => {
    const stack = webhookStack(database, {
      TETHER_WEBHOOK_ALLOW_HTTP: "1",
      TETHER_WEBHOOK_BACKOFF_BASE_MS: "20",
      TETHER_WEBHOOK_BACKOFF_MAX_MS: "100",
      // Attempts never run out here: only the maximum age (its least, 1 s) can make them DEAD.
      TETHER_WEBHOOK_MAX_ATTEMPTS: "100",
      TETHER_WEBHOOK_MAX_AGE_MS: "1000",
      TETHER_WEBHOOK_POLL_MS: "20",
    });

    describe("at its production setting", () => {
      it("a dead endpoint's deliveries reach DEAD by maximum age with the breaker open; a healthy subscription is unaffected", async () => {
        const dead = await stack.receiver();
        dead.mode = 503;
        const healthy = await stack.receiver();
        for (const [id, r] of [
          ["breaker-dead", dead],
          ["breaker-healthy", healthy],
        ] as const) {
          const w = await stack
            .hooks()
            .createWebhook({ webhookId: id, webhook: { url: r.url, eventTypes: ["device.created"], deviceFilter: 'labels.team = "breaker"' } });
          r.secrets.push(w.secret);
        }
        const N = 40;
        for (let i = 0; i < N; i++)
          await stack.devices().createDevice({ deviceId: `breaker-${i}`, device: { labels: { team: "breaker" }, kind: { case: "led", value: {} } } });
        await eventually(async () => healthy.ids().size === N, 15_000, "the healthy subscription's events");
        expect(healthy.received.every((x) => x.verified && x.answer === 200)).toBe(true);
        const deadList = await eventually(
          async () => {
            const page = await stack.hooks().listWebhookDeliveries({ parent: "webhooks/breaker-dead", state: WebhookDelivery_State.DEAD, pageSize: 100 });
            return page.deliveries.length === N && page.deliveries;
          },
          30_000,
          "every delivery of the dead endpoint DEAD",
        );
        expect(deadList.every((d) => d.lastError.endsWith("maximum age reached"))).toBe(true);
        // The breaker opened after the first failures: most deliveries were never even tried, and
        // the endpoint got a handful of requests, not 40 × retries: at most the failures that open it
        // (TETHER_WEBHOOK_BREAKER_FAILURES, 5) less one, plus a window (TETHER_WEBHOOK_CONCURRENCY, 8) already in flight.
        expect(dead.received.length).toBeLessThanOrEqual(5 - 1 + 8);
        expect(deadList.filter((d) => d.attemptCount === 0).length).toBeGreaterThan(0);
        const healthyDead = await stack.hooks().listWebhookDeliveries({ parent: "webhooks/breaker-healthy", state: WebhookDelivery_State.DEAD });
        expect(healthyDead.deliveries).toEqual([]);
      }, 60_000);
    });
  });
}

/** Refusals at the API, with the production URL rules (no TETHER_WEBHOOK_ALLOW_HTTP). */
export function describeWebhookRefusals(database: SuiteDatabase): void {
  describe("webhooks, refusals", () => {
    const stack = webhookStack(database, {});
    /** The field-level reasons of a refused call, as `field: description`. */
    async function refusal(call: Promise<unknown>): Promise<{ code: Code; fields: string[] }> {
      const err = await call.then(
        () => undefined,
        (e) => ConnectError.from(e),
      );
      if (!err) throw new Error("the call succeeded; expected a refusal");
      return { code: err.code, fields: err.findDetails(BadRequestSchema).flatMap((b) => b.fieldViolations.map((v) => `${v.field}: ${v.description}`)) };
    }
    const create = (webhookId: string, webhook: { url: string; eventTypes?: string[]; deviceFilter?: string }) =>
      stack.hooks().createWebhook({ webhookId, webhook: { eventTypes: ["device.created"], ...webhook } });

    describe("at the API", () => {
      it("http:// without TETHER_WEBHOOK_ALLOW_HTTP is INVALID_ARGUMENT on webhook.url", async () => {
        expect(await refusal(create("plain", { url: "http://10.0.0.1/hook" }))).toEqual({
          code: Code.InvalidArgument,
          fields: [expect.stringMatching(/^webhook\.url: must be an https:\/\/ URL: http:\/\/ is accepted only with TETHER_WEBHOOK_ALLOW_HTTP=1/)],
        });
      });

      it("a host resolving to loopback or link-local (SSRF) is INVALID_ARGUMENT on webhook.url, on create and on update", async () => {
        for (const url of [
          "https://127.0.0.1/hook",
          "https://localhost/hook",
          "https://169.254.169.254/latest/meta-data",
          "https://[::1]/",
          "https://[::ffff:127.0.0.1]/",
          "https://0.0.0.0/",
        ]) {
          const r = await refusal(create("ssrf", { url }));
          expect({ url, ...r }).toEqual({
            url,
            code: Code.InvalidArgument,
            fields: [expect.stringMatching(/^webhook\.url: host "[^"]+" resolves to .* loopback, link-local, multicast or unspecified address/)],
          });
        }
        // Private ranges are allowed (on-premises receivers); moving that hook to the metadata address is not.
        await create("private", { url: "https://10.0.0.1/hook" });
        const moved = await refusal(
          stack.hooks().updateWebhook({ webhook: { name: "webhooks/private", url: "https://169.254.169.254/" }, updateMask: { paths: ["url"] } }),
        );
        expect(moved.code).toBe(Code.InvalidArgument);
        expect(moved.fields).toEqual([expect.stringMatching(/^webhook\.url: host "169\.254\.169\.254" resolves to/)]);
        expect((await stack.hooks().getWebhook({ name: "webhooks/private" })).url).toBe("https://10.0.0.1/hook");
      });

      it("an unknown event type names webhook.event_types[i]; a bad filter names webhook.device_filter", async () => {
        const types = await refusal(create("types", { url: "https://10.0.0.1/hook", eventTypes: ["device.created", "device.exploded"] }));
        expect(types).toEqual({
          code: Code.InvalidArgument,
          fields: [expect.stringMatching(/^webhook\.event_types\[1\]: unknown event type "device\.exploded"/)],
        });
        const filter = await refusal(create("filter", { url: "https://10.0.0.1/hook", deviceFilter: "labels.room = " }));
        expect(filter.code).toBe(Code.InvalidArgument);
        expect(filter.fields.length).toBeGreaterThan(0);
        expect(filter.fields.every((f) => f.startsWith("webhook.device_filter"))).toBe(true);
      });

      it("a caller who is not an admin is PERMISSION_DENIED on every method", async () => {
        const hooks = bearerClient(stack.s, WebhookService, await userToken(stack.s, "not-admin"));
        // Called one at a time: a promise made before the one before it settled would reject unhandled.
        const calls: Array<() => Promise<unknown>> = [
          () => hooks.createWebhook({ webhookId: "mine", webhook: { url: "https://10.0.0.1/hook", eventTypes: ["device.created"] } }),
          () => hooks.listWebhooks({}),
          () => hooks.getWebhook({ name: "webhooks/private" }),
          () => hooks.updateWebhook({ webhook: { name: "webhooks/private", disabled: true }, updateMask: { paths: ["disabled"] } }),
          () => hooks.rotateWebhookSecret({ name: "webhooks/private" }),
          () => hooks.listWebhookDeliveries({ parent: "webhooks/private" }),
          () => hooks.deleteWebhook({ name: "webhooks/private" }),
        ];
        for (const call of calls) expect((await refusal(call())).code).toBe(Code.PermissionDenied);
        expect((await stack.hooks().getWebhook({ name: "webhooks/private" })).disabled).toBe(false);
      });
    });
  });
}
