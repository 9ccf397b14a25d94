import type { ServiceImpl } from "@connectrpc/connect";
import type { AuditService as AuditServiceDesc } from "../../gen/tether/v1/audit_service_pb.js";
import type { AuditService } from "../core/audit/audit-service.js";
import { accessOf, kCutOff } from "./auth.js";

/** AuditService over Connect/gRPC: a thin shell; filters and rights live in the core. */
export function auditHandler(audit: AuditService): ServiceImpl<typeof AuditServiceDesc> {
  return {
    listAuditEvents: (req, ctx) => audit.listAuditEvents(accessOf(ctx), req),
    async *watchAuditEvents(req, ctx) {
      for await (const auditEvent of audit.watchAuditEvents(accessOf(ctx), req, ctx.signal, ctx.values.get(kCutOff))) {
        yield { auditEvent };
      }
    },
  };
}
