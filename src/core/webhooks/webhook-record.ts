import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type Webhook,
  Webhook_PayloadFormat,
  type WebhookDelivery,
  WebhookDelivery_State,
  WebhookSchema,
  WebhookDeliverySchema,
} from "../../../gen/tether/v1/webhook_pb.js";

export type PayloadFormat = "json" | "binary";
export type DeliveryState = "PENDING" | "DELIVERED" | "FAILED" | "DEAD";

/** A subscription as stored. `secret` never leaves the server except in Create/Rotate responses. */
export interface WebhookRecord {
  id: string;
  uid: string;
  displayName: string;
  url: string;
  eventTypes: string[];
  deviceFilter: string;
  payloadFormat: PayloadFormat;
  disabled: boolean;
  secret: string;
  previousSecret?: string;
  previousSecretExpireTime?: Date;
  createTime: Date;
  updateTime: Date;
  revision: number;
}

/** One event's delivery to one subscription. */
export interface DeliveryRecord {
  id: string;
  webhookId: string;
  eventId: string;
  eventType: string;
  deviceId?: string;
  state: DeliveryState;
  attemptCount: number;
  lastStatus: number;
  lastError: string;
  nextAttemptTime: Date;
  createTime: Date;
  endTime?: Date;
}

export const webhookName = (id: string) => `webhooks/${id}`;
export const deliveryName = (webhookId: string, id: string) => `webhooks/${webhookId}/deliveries/${id}`;
export const webhookEtag = (r: Pick<WebhookRecord, "revision" | "uid">) => `"${r.revision}-${r.uid.slice(0, 8)}"`;

/** The secrets that sign a request at `now`: the current one, and the previous one until it expires. */
export function signingSecrets(r: WebhookRecord, now: Date): string[] {
  const prev = r.previousSecret && r.previousSecretExpireTime && r.previousSecretExpireTime > now ? [r.previousSecret] : [];
  return [r.secret, ...prev];
}

export function toWebhookProto(r: WebhookRecord, opts: { withSecret?: boolean; now?: Date } = {}): Webhook {
  const prevValid = r.previousSecretExpireTime && (!opts.now || r.previousSecretExpireTime > opts.now);
  return create(WebhookSchema, {
    name: webhookName(r.id),
    uid: r.uid,
    displayName: r.displayName,
    url: r.url,
    eventTypes: r.eventTypes,
    deviceFilter: r.deviceFilter,
    payloadFormat: r.payloadFormat === "binary" ? Webhook_PayloadFormat.BINARY : Webhook_PayloadFormat.JSON,
    disabled: r.disabled,
    secret: opts.withSecret ? r.secret : "",
    previousSecretExpireTime: prevValid ? timestampFromDate(r.previousSecretExpireTime!) : undefined,
    createTime: timestampFromDate(r.createTime),
    updateTime: timestampFromDate(r.updateTime),
    etag: webhookEtag(r),
  });
}

const STATES: Record<DeliveryState, WebhookDelivery_State> = {
  PENDING: WebhookDelivery_State.PENDING,
  DELIVERED: WebhookDelivery_State.DELIVERED,
  FAILED: WebhookDelivery_State.FAILED,
  DEAD: WebhookDelivery_State.DEAD,
};

export function deliveryStateName(s: WebhookDelivery_State): DeliveryState | undefined {
  return (Object.entries(STATES) as [DeliveryState, WebhookDelivery_State][]).find(([, v]) => v === s)?.[0];
}

export function toDeliveryProto(d: DeliveryRecord): WebhookDelivery {
  return create(WebhookDeliverySchema, {
    name: deliveryName(d.webhookId, d.id),
    eventId: d.eventId,
    eventType: d.eventType,
    state: STATES[d.state],
    attemptCount: d.attemptCount,
    lastStatus: d.lastStatus,
    lastError: d.lastError,
    nextAttemptTime: d.state === "PENDING" || d.state === "FAILED" ? timestampFromDate(d.nextAttemptTime) : undefined,
    createTime: timestampFromDate(d.createTime),
    endTime: d.endTime ? timestampFromDate(d.endTime) : undefined,
    device: d.deviceId ? `devices/${d.deviceId}` : "",
  });
}
