import { auditInterceptor } from "../api/audit.js";
import { createAuditService } from "../core/audit/audit-service.js";
import type { AuditCredential } from "../core/ports/audit.js";
import { endAudit, ownAudit, runAudited } from "../store/audit-context.js";
import type { Infrastructure } from "./infrastructure.js";

/** Audit-log method names of certificate operations that arrive over MQTT rather than the API. */
export const RENEW_OVER_MQTT = "tether.certificates/RenewOverMqtt";
export const PROVISION_OVER_MQTT = "tether.certificates/ProvisionOverMqtt";

/**
 * The audit log: its API (AuditService), the interceptor that audits every mutating call, the
 * hourly retention, and `asDevice` for the certificate operations that arrive over MQTT (the
 * store writes their events with the certificate they issue, as for API calls).
 */
export function startAudit(x: Infrastructure) {
  const log = x.log.child({ component: "audit" });
  const service = createAuditService({ audit: x.stores.audit, devices: x.stores.devices, feed: x.feeds.auditFeed, clock: x.clock, log: x.coreLog });
  const interceptor = auditInterceptor({ audit: x.stores.audit, clock: x.clock, counters: x.counters, log });
  const prune = () => service.prune(x.config.audit.retentionDays).catch((err: unknown) => (log.error({ err }, "audit retention failed"), 0));
  const timer = setInterval(() => void prune(), 3_600_000);
  timer.unref();
  void prune();
  x.life.add({ name: "audit retention", stop: () => clearInterval(timer) });
  return {
    service,
    interceptor,
    /** Deletes events past the retention now; returns how many. */
    prune,
    /** Runs an operation a device (or claim) asked for over MQTT with its audit event pending. */
    asDevice<T>(e: { principal: string; method: string; resource: string; credential?: AuditCredential }, fn: () => Promise<T>): Promise<T> {
      const pending = ownAudit({ ...e, credential: e.credential ?? "certificate", time: x.clock.now() });
      return runAudited(pending, fn).finally(() => endAudit(pending));
    },
  };
}

export type Audit = ReturnType<typeof startAudit>;
