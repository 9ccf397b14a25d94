import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type AuditEvent, AuditEvent_Credential, AuditEventSchema } from "../../../gen/tether/v1/audit_pb.js";
import type { AuditCredential, AuditFilter, AuditRecord } from "../ports/audit.js";

const CREDENTIALS: Record<AuditCredential, AuditEvent_Credential> = {
  certificate: AuditEvent_Credential.CERTIFICATE,
  token: AuditEvent_Credential.ACCESS_TOKEN,
  api_key: AuditEvent_Credential.API_KEY,
  internal: AuditEvent_Credential.INTERNAL,
};

/** `auditEvents/{id}`. */
export const auditEventName = (id: string): string => `auditEvents/${id}`;

/** The API view of a stored event. */
export function toAuditEventProto(r: AuditRecord): AuditEvent {
  return create(AuditEventSchema, {
    name: auditEventName(r.id),
    createTime: timestampFromDate(r.time),
    principal: r.principal,
    credential: CREDENTIALS[r.credential] ?? AuditEvent_Credential.UNSPECIFIED,
    certificateSerial: r.certificateSerial,
    method: r.method,
    resource: r.resource,
    requestId: r.requestId,
    statusCode: r.statusCode,
    fieldPaths: r.fieldPaths,
    via: r.via ?? "",
  });
}

/** The same filter as the store's (ListAuditEvents), applied in memory to a live event (WatchAuditEvents). */
export function matchesAuditFilter(f: AuditFilter, r: AuditRecord): boolean {
  if (f.principal) {
    if (f.principal.endsWith("/*")) {
      const base = f.principal.slice(0, -2);
      if (r.principal !== base && !r.principal.startsWith(`${base}/`)) return false;
    } else if (r.principal !== f.principal) return false;
  }
  if (f.resource && r.resource !== f.resource && !r.resource.startsWith(`${f.resource}/`)) return false;
  if (f.method && (f.method.includes("/") ? r.method !== f.method : r.method.split("/")[1] !== f.method)) return false;
  if (f.via && (r.via ?? "") !== f.via) return false;
  return true;
}
