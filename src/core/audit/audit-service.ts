import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { AuditEvent } from "../../../gen/tether/v1/audit_pb.js";
import type { ListAuditEventsRequest, ListAuditEventsResponse, WatchAuditEventsRequest } from "../../../gen/tether/v1/audit_service_pb.js";
import type { Access } from "../access/access.js";
import { createDeviceRights } from "../access/device-rights.js";
import type { Clock } from "../clock.js";
import { InvalidArgumentError, Violations } from "../errors.js";
import type { CoreLogger } from "../log.js";
import { decodePageToken, encodePageToken, resolvePageSize } from "../page-token.js";
import type { AuditFilter, AuditRecord, AuditRepository } from "../ports/audit.js";
import type { ChangeFeed } from "../ports/change-feed.js";
import type { DeviceRepository } from "../ports/device-repository.js";
import { watchFeed } from "../watch-feed.js";
import { matchesAuditFilter, toAuditEventProto } from "./audit-event.js";

const DAY = 86_400_000;
/** Longest filter value accepted (principals and resources are resource names). */
const MAX_FILTER = 512;

export interface AuditServiceDeps {
  audit: AuditRepository;
  devices: Pick<DeviceRepository, "get">;
  /** Every committed event, from this replica and (with RabbitMQ) the others. */
  feed: ChangeFeed<AuditRecord>;
  clock: Clock;
  log: CoreLogger;
}

export type AuditService = ReturnType<typeof createAuditService>;

function parseFilter(req: { principal: string; resource: string; method: string; via: string }, v: Violations): AuditFilter {
  for (const field of ["principal", "resource", "method", "via"] as const) {
    if (req[field].length > MAX_FILTER) v.add(field, `must be at most ${MAX_FILTER} characters`);
  }
  return { principal: req.principal || undefined, resource: req.resource || undefined, method: req.method || undefined, via: req.via || undefined };
}

/**
 * ListAuditEvents and WatchAuditEvents. Admins (and Tether's services) see every event; anyone
 * else sees the events of their own calls (principal `users/{me}` and their API keys) and those
 * on devices they may see (viewer), checked in SQL for lists and per event, as of sending, for
 * watches. Firings of a rule on one device count as on that device.
 */
export function createAuditService(d: AuditServiceDeps) {
  const rights = createDeviceRights(d.devices);
  const self = (access: Access) => `users/${access.caller.user}`;

  /** May the caller see this event, as of now? */
  function visible(access: Access): (r: AuditRecord) => Promise<boolean> {
    if (access.all) return async () => true;
    const gate = rights.gate(access);
    return async (r) => {
      const me = self(access);
      if (r.principal === me || r.principal.startsWith(`${me}/`)) return true;
      return r.deviceId !== undefined && (await gate(r.deviceId));
    };
  }

  return {
    async listAuditEvents(access: Access, req: ListAuditEventsRequest): Promise<ListAuditEventsResponse> {
      const v = new Violations();
      const filter = parseFilter(req, v);
      const startTime = req.startTime ? timestampDate(req.startTime) : undefined;
      const endTime = req.endTime ? timestampDate(req.endTime) : undefined;
      if (startTime && endTime && startTime.getTime() >= endTime.getTime()) v.add("end_time", "must be after start_time");
      v.throwIfAny();
      const limit = resolvePageSize(req.pageSize);
      const query = `audit|${req.principal}|${req.resource}|${req.method}|${req.via}|${startTime?.toISOString() ?? ""}|${endTime?.toISOString() ?? ""}`;
      const beforeId = decodePageToken(req.pageToken, query);
      if (beforeId !== undefined && !/^\d{1,19}$/.test(beforeId)) throw InvalidArgumentError.field("page_token", "is not a token returned by this method");
      const rows = await d.audit.list({
        ...filter,
        startTime,
        endTime,
        beforeId,
        visibleTo: access.all ? undefined : { scope: access.scope(), self: self(access) },
        limit: limit + 1,
      });
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      return {
        $typeName: "tether.v1.ListAuditEventsResponse",
        auditEvents: page.map(toAuditEventProto),
        nextPageToken: rows.length > limit && last ? encodePageToken(last.id, query) : "",
      };
    },

    /** WatchAuditEvents: every event committed from now on that matches and that the caller may see. */
    async *watchAuditEvents(access: Access, req: WatchAuditEventsRequest, signal: AbortSignal, onOverflow?: () => void): AsyncGenerator<AuditEvent> {
      const v = new Violations();
      const filter = parseFilter(req, v);
      v.throwIfAny();
      const mayRead = async (r: AuditRecord) => visible(await access.current())(r);
      for await (const r of watchFeed(d.feed, (r) => matchesAuditFilter(filter, r), undefined, signal, undefined, mayRead, onOverflow)) {
        yield toAuditEventProto(r);
      }
    },

    /** Deletes events older than the retention; every replica may run it. */
    async prune(retentionDays: number): Promise<number> {
      const n = await d.audit.deleteBefore(new Date(d.clock.now().getTime() - retentionDays * DAY));
      if (n > 0) d.log.info({ deleted: n, retentionDays }, "audit events deleted by retention");
      return n;
    },
  };
}
