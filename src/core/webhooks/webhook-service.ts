import { randomUUID } from "node:crypto";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Webhook, WebhookDelivery } from "../../../gen/tether/v1/webhook_pb.js";
import { Webhook_PayloadFormat, WebhookDelivery_State } from "../../../gen/tether/v1/webhook_pb.js";
import type {
  CreateWebhookRequest,
  DeleteWebhookRequest,
  ListWebhookDeliveriesRequest,
  ListWebhookDeliveriesResponse,
  ListWebhooksRequest,
  ListWebhooksResponse,
  RotateWebhookSecretRequest,
  UpdateWebhookRequest,
} from "../../../gen/tether/v1/webhook_service_pb.js";
import { type Access, requireAdmin } from "../access/access.js";
import { newSecret } from "../auth/secrets.js";
import type { Clock } from "../clock.js";
import { parseDeviceFilter } from "../devices/device-filter.js";
import { truncate } from "../devices/device-name.js";
import { AbortedError, FailedPreconditionError, InvalidArgumentError, NotFoundError, Violations } from "../errors.js";
import { decodePageToken, encodePageToken, resolvePageSize } from "../page-token.js";
import type { UrlPolicy, WebhookRepository } from "../ports/webhooks.js";
import { parseEventTypes } from "./event-types.js";
import { deliveryName, deliveryStateName, toDeliveryProto, toWebhookProto, type WebhookRecord, webhookEtag, webhookName } from "./webhook-record.js";

export interface WebhookServiceDeps {
  webhooks: WebhookRepository;
  urls: UrlPolicy;
  clock: Clock;
  /** After a committed change: the relay reloads its routing table. */
  onChanged?: (id: string) => void;
}

export type WebhookService = ReturnType<typeof createWebhookService>;

const ID = /^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const UPDATABLE = ["display_name", "url", "event_types", "device_filter", "payload_format", "disabled"] as const;
const MAX_ROTATION_MS = 30 * 86_400_000;
/** Webhook secrets are recognisable by their prefix, as API keys are. */
export const WEBHOOK_SECRET_PREFIX = "whsec_";

function parseName(name: string, field = "name"): string {
  const m = /^webhooks\/([^/]+)$/.exec(name);
  if (!m || !ID.test(m[1]!)) throw InvalidArgumentError.field(field, `"${truncate(name)}" is not a webhook name: expected webhooks/{webhook}`);
  return m[1]!;
}

/**
 * The WebhookService use cases. Every method is admin-only: a subscription receives events of
 * every device its filter matches, so it is a fleet-wide read, like a job.
 */
export function createWebhookService({ webhooks, urls, clock, onChanged }: WebhookServiceDeps) {
  async function load(name: string, field = "name"): Promise<WebhookRecord> {
    const id = parseName(name, field);
    const r = await webhooks.get(id);
    if (!r) throw new NotFoundError(webhookName(id));
    return r;
  }

  /** Validates the settable fields of `w` named in `paths` into `into`; the URL policy resolves the host. */
  async function apply(w: Webhook, paths: readonly string[], into: WebhookRecord): Promise<void> {
    const v = new Violations();
    for (const p of paths) {
      if (p === "display_name") {
        if (w.displayName.length > 256) v.add("webhook.display_name", "is longer than 256 characters");
        into.displayName = w.displayName;
      } else if (p === "url") {
        const reason = w.url === "" ? "is required" : w.url.length > 2048 ? "is longer than 2048 characters" : await urls.check(w.url);
        if (reason) v.add("webhook.url", reason);
        into.url = w.url;
      } else if (p === "event_types") {
        into.eventTypes = parseEventTypes(w.eventTypes, "webhook.event_types", v);
      } else if (p === "device_filter") {
        try {
          parseDeviceFilter(w.deviceFilter, "webhook.device_filter");
        } catch (err) {
          if (err instanceof InvalidArgumentError) v.list.push(...err.violations);
          else throw err;
        }
        into.deviceFilter = w.deviceFilter;
      } else if (p === "payload_format") {
        if (!Object.values(Webhook_PayloadFormat).includes(w.payloadFormat)) v.add("webhook.payload_format", "is not a known format");
        into.payloadFormat = w.payloadFormat === Webhook_PayloadFormat.BINARY ? "binary" : "json";
      } else if (p === "disabled") {
        into.disabled = w.disabled;
      } else {
        v.add("update_mask", `"${truncate(p)}" cannot be updated; updatable: ${UPDATABLE.join(", ")}`);
      }
    }
    v.throwIfAny();
  }

  const changed = (id: string) => onChanged?.(id);

  return {
    async createWebhook(access: Access, req: CreateWebhookRequest): Promise<Webhook> {
      requireAdmin(access, "webhooks");
      if (!ID.test(req.webhookId)) {
        throw InvalidArgumentError.field("webhook_id", "must be 1-63 lowercase letters, digits or hyphens starting with a letter");
      }
      if (!req.webhook) throw InvalidArgumentError.field("webhook", "is required");
      const now = clock.now();
      const r: WebhookRecord = {
        id: req.webhookId,
        uid: randomUUID(),
        displayName: "",
        url: "",
        eventTypes: [],
        deviceFilter: "",
        payloadFormat: "json",
        disabled: false,
        secret: newSecret(WEBHOOK_SECRET_PREFIX),
        createTime: now,
        updateTime: now,
        revision: 1,
      };
      await apply(req.webhook, UPDATABLE, r);
      const stored = await webhooks.insert(r);
      changed(stored.id);
      return toWebhookProto(stored, { withSecret: true, now });
    },

    async getWebhook(access: Access, name: string): Promise<Webhook> {
      requireAdmin(access, "webhooks");
      return toWebhookProto(await load(name), { now: clock.now() });
    },

    async listWebhooks(access: Access, req: ListWebhooksRequest): Promise<ListWebhooksResponse> {
      requireAdmin(access, "webhooks");
      const limit = resolvePageSize(req.pageSize);
      const afterId = decodePageToken(req.pageToken, "webhooks");
      const rows = await webhooks.list({ afterId, limit: limit + 1 });
      const page = rows.slice(0, limit);
      const now = clock.now();
      return {
        $typeName: "tether.v1.ListWebhooksResponse",
        webhooks: page.map((r) => toWebhookProto(r, { now })),
        nextPageToken: rows.length > limit ? encodePageToken(page.at(-1)!.id, "webhooks") : "",
      };
    },

    async updateWebhook(access: Access, req: UpdateWebhookRequest): Promise<Webhook> {
      requireAdmin(access, "webhooks");
      if (!req.webhook) throw InvalidArgumentError.field("webhook", "is required");
      const current = await load(req.webhook.name, "webhook.name");
      if (req.webhook.etag !== "" && req.webhook.etag !== webhookEtag(current)) {
        throw new AbortedError(`${webhookName(current.id)} changed since it was read (etag mismatch); read it again`);
      }
      const paths = req.updateMask?.paths.length ? req.updateMask.paths : UPDATABLE;
      const next: WebhookRecord = { ...current, updateTime: clock.now(), revision: current.revision + 1 };
      await apply(req.webhook, paths, next);
      const stored = await webhooks.update(next);
      if (!stored) throw new AbortedError(`${webhookName(current.id)} changed meanwhile; read it again`);
      changed(stored.id);
      return toWebhookProto(stored, { now: clock.now() });
    },

    async deleteWebhook(access: Access, req: DeleteWebhookRequest): Promise<void> {
      requireAdmin(access, "webhooks");
      const id = parseName(req.name);
      const current = await webhooks.get(id);
      if (!current) {
        if (req.allowMissing) return;
        throw new NotFoundError(webhookName(id));
      }
      if (req.etag !== "" && req.etag !== webhookEtag(current)) throw new AbortedError(`${webhookName(id)} changed since it was read (etag mismatch)`);
      if (!(await webhooks.delete(id, req.etag !== "" ? current.revision : undefined))) throw new AbortedError(`${webhookName(id)} changed meanwhile`);
      changed(id);
    },

    async rotateWebhookSecret(access: Access, req: RotateWebhookSecretRequest): Promise<Webhook> {
      requireAdmin(access, "webhooks");
      const current = await load(req.name);
      const now = clock.now();
      const until = req.previousSecretExpireTime ? timestampDate(req.previousSecretExpireTime) : new Date(now.getTime() + 86_400_000);
      if (until.getTime() - now.getTime() > MAX_ROTATION_MS) throw InvalidArgumentError.field("previous_secret_expire_time", "is more than 30 days ahead");
      const next: WebhookRecord = {
        ...current,
        secret: newSecret(WEBHOOK_SECRET_PREFIX),
        previousSecret: until > now ? current.secret : undefined,
        previousSecretExpireTime: until > now ? until : undefined,
        updateTime: now,
        revision: current.revision + 1,
      };
      const stored = await webhooks.update(next);
      if (!stored) throw new AbortedError(`${webhookName(current.id)} changed meanwhile; try again`);
      changed(stored.id);
      return toWebhookProto(stored, { withSecret: true, now });
    },

    async listWebhookDeliveries(access: Access, req: ListWebhookDeliveriesRequest): Promise<ListWebhookDeliveriesResponse> {
      requireAdmin(access, "webhooks");
      const w = await load(req.parent, "parent");
      const limit = resolvePageSize(req.pageSize);
      const state = req.state === WebhookDelivery_State.UNSPECIFIED ? undefined : deliveryStateName(req.state);
      if (req.state !== WebhookDelivery_State.UNSPECIFIED && !state) throw InvalidArgumentError.field("state", "is not a known state");
      const query = `${w.id}|${state ?? ""}`;
      const key = decodePageToken(req.pageToken, query);
      const before = key ? { time: new Date(key.split("|")[0]!), id: key.split("|")[1]! } : undefined;
      const rows = await webhooks.listDeliveries(w.id, { state, before, limit: limit + 1 });
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      return {
        $typeName: "tether.v1.ListWebhookDeliveriesResponse",
        deliveries: page.map(toDeliveryProto),
        nextPageToken: rows.length > limit && last ? encodePageToken(`${last.createTime.toISOString()}|${last.id}`, query) : "",
      };
    },

    async replayWebhookDelivery(access: Access, name: string): Promise<WebhookDelivery> {
      requireAdmin(access, "webhooks");
      const m = /^webhooks\/([^/]+)\/deliveries\/([0-9a-f-]{36})$/.exec(name);
      if (!m || !ID.test(m[1]!))
        throw InvalidArgumentError.field("name", `"${truncate(name)}" is not a delivery name: expected webhooks/{webhook}/deliveries/{delivery}`);
      const r = await webhooks.replay(m[1]!, m[2]!, clock.now());
      if (r === undefined) throw new NotFoundError(deliveryName(m[1]!, m[2]!));
      if (r === "not-dead") throw new FailedPreconditionError(`${deliveryName(m[1]!, m[2]!)} is not DEAD: only dead deliveries are replayed`);
      changed(m[1]!);
      return toDeliveryProto(r);
    },
  };
}
