import { create } from "@bufbuild/protobuf";
import { EmptySchema } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { WebhookService as WebhookServiceDesc } from "../../gen/tether/v1/webhook_service_pb.js";
import type { WebhookService } from "../core/webhooks/webhook-service.js";
import { accessOf } from "./auth.js";

/** WebhookService over Connect/gRPC: a thin shell; validation and rights (admin only) live in the core. */
export function webhookHandler(webhooks: WebhookService): ServiceImpl<typeof WebhookServiceDesc> {
  return {
    createWebhook: (req, ctx) => webhooks.createWebhook(accessOf(ctx), req),
    getWebhook: (req, ctx) => webhooks.getWebhook(accessOf(ctx), req.name),
    listWebhooks: (req, ctx) => webhooks.listWebhooks(accessOf(ctx), req),
    updateWebhook: (req, ctx) => webhooks.updateWebhook(accessOf(ctx), req),
    async deleteWebhook(req, ctx) {
      await webhooks.deleteWebhook(accessOf(ctx), req);
      return create(EmptySchema);
    },
    rotateWebhookSecret: (req, ctx) => webhooks.rotateWebhookSecret(accessOf(ctx), req),
    listWebhookDeliveries: (req, ctx) => webhooks.listWebhookDeliveries(accessOf(ctx), req),
    replayWebhookDelivery: (req, ctx) => webhooks.replayWebhookDelivery(accessOf(ctx), req.name),
  };
}
