import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { CertificateService as CertificateServiceDesc } from "../../gen/tether/v1/certificate_service_pb.js";
import { requireAdmin } from "../core/access/access.js";
import type { CertificateService } from "../core/certificates/certificate-service.js";
import { accessOf } from "./auth.js";

/**
 * CertificateService over Connect/gRPC: a thin shell; CSR checks and renewal rules live in the core.
 * Issuing and revoking device identities is fleet security, so every method needs an admin
 * (PERMISSION_DENIED otherwise); the rights model has no per-device certificate role yet.
 */
export function certificateHandler(certs: CertificateService): ServiceImpl<typeof CertificateServiceDesc> {
  const admin = (ctx: HandlerContext) => requireAdmin(accessOf(ctx), "device certificates");
  return {
    createCertificate: (req, ctx) => (admin(ctx), certs.createCertificate(req)),
    getCertificate: (req, ctx) => (admin(ctx), certs.getCertificate(req.name)),
    listCertificates: (req, ctx) => (admin(ctx), certs.listCertificates(req)),
    renewCertificate: (req, ctx) => (admin(ctx), certs.renewCertificate(req)),
    revokeCertificate: (req, ctx) => (admin(ctx), certs.revokeCertificate(req)),
    getCertificateRevocationList: (_req, ctx) => (admin(ctx), certs.getCrl()),
  };
}
