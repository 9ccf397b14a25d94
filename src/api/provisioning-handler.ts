import { create } from "@bufbuild/protobuf";
import { EmptySchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import type { ProvisioningService as ProvisioningServiceDesc } from "../../gen/tether/v1/provisioning_service_pb.js";
import type { ProvisioningService } from "../core/certificates/provisioning-service.js";
import { requireAdmin } from "../core/access/access.js";
import { accessOf, kPrincipal } from "./auth.js";

/**
 * ProvisioningService over Connect/gRPC. ProvisionDevice takes the template from the caller's claim
 * certificate (its CN), never from the request, so a claim can only provision into its own batch.
 * Everything else (templates, claim certificates) needs an admin.
 */
export function provisioningHandler(p: ProvisioningService): ServiceImpl<typeof ProvisioningServiceDesc> {
  const admin = (ctx: HandlerContext) => requireAdmin(accessOf(ctx), "provisioning");
  return {
    createProvisioningTemplate: (req, ctx) => (admin(ctx), p.createTemplate(req)),
    getProvisioningTemplate: (req, ctx) => (admin(ctx), p.getTemplate(req.name)),
    listProvisioningTemplates: (req, ctx) => (admin(ctx), p.listTemplates(req)),
    addAllowedSerialNumbers: (req, ctx) => (admin(ctx), p.addSerialNumbers(req)),
    async deleteProvisioningTemplate(req, ctx) {
      admin(ctx);
      await p.deleteTemplate(req.name);
      return create(EmptySchema);
    },
    createClaimCertificate: (req, ctx) => (admin(ctx), p.createClaimCertificate(req)),
    listProvisioningRecords: (req, ctx) => (admin(ctx), p.listRecords(req)),
    provisionDevice(req, ctx) {
      const principal = ctx.values.get(kPrincipal);
      if (principal?.kind !== "claim") throw new ConnectError("ProvisionDevice needs a claim certificate (OU claims)", Code.PermissionDenied);
      return p.provisionDevice(principal.id, req);
    },
  };
}
