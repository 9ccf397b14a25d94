import type { DeviceScope } from "../access/access.js";

/** How a principal proved who it is (`internal`: Tether acting on its own, as a rule or job). */
export type AuditCredential = "certificate" | "token" | "api_key" | "internal";

/** Who acted, in which call: the part of an audit event that comes from the caller, not the change. */
export interface AuditStamp {
  /** `users/{user}`, `users/{user}/apiKeys/{key}`, `services/{s}`, `devices/{d}`, `provisioningTemplates/{t}`, `rules/{r}`, `jobs/{j}`. */
  principal: string;
  credential: AuditCredential;
  /** Lowercase hex, for `certificate`; else "". */
  certificateSerial: string;
  /** The RPC's full name (`tether.v1.DeviceService/UpdateDevice`) or an internal operation (`tether.rules/Fire`). */
  method: string;
  /** The call's request id; "" for firings. */
  requestId: string;
  /** When the call or firing started (the server's clock). */
  time: Date;
  /** The client the call came through (`mcp`); "" or absent for any other call and for firings. Informational only. */
  via?: string;
}

/**
 * A call's audit event still to be written with its change. The API puts one per mutating call
 * in the call's context; the store writes it in the transaction that makes the change and sets
 * `written`. A group commit carries each item's own (`NewTask.audit`), so one transaction
 * writes many callers' events, each with its caller.
 */
export interface PendingAudit {
  stamp: AuditStamp;
  /** The resource the call names; a store that assigns the name (a new task's id) sets it. */
  resource: string;
  /** Paths of the changed fields (update mask, or the fields set on create). Never values. */
  fieldPaths: string[];
  /** Set once the event committed with the change: nothing more is written for the call. */
  written: boolean;
  /** The device the event concerns when its resource does not lie under `devices/` (a rule on one device). */
  deviceId?: string;
}

/** A stored audit event. */
export interface AuditRecord extends AuditStamp {
  /** Grows with commit order (roughly): the key pages are read by. */
  id: string;
  resource: string;
  /** The device the resource lies under (`devices/{device}/…`), for rights; undefined otherwise. */
  deviceId?: string;
  /** gRPC status code: 0 OK. */
  statusCode: number;
  fieldPaths: string[];
}

/** What ListAuditEvents and WatchAuditEvents filter on. */
export interface AuditFilter {
  /** Exact principal; a trailing `/*` matches the principal and everything under it (a user's API keys). */
  principal?: string;
  /** A resource and everything under it. */
  resource?: string;
  /** A full method name, or a bare one matching any service's. */
  method?: string;
  /** Exact `via` (`mcp`). */
  via?: string;
}

export interface AuditQuery extends AuditFilter {
  startTime?: Date;
  endTime?: Date;
  /** Continue below this id (the previous page's last). */
  beforeId?: string;
  /** For non-admins: events on devices in scope, or the caller's own (principal `users/{self}` and below). */
  visibleTo?: { scope: DeviceScope; self: string };
  limit: number;
}

/** The audit log's store (`src/store/audit-store.ts`). Writing goes with each change, not through here. */
export interface AuditRepository {
  /** Newest first. */
  list(q: AuditQuery): Promise<AuditRecord[]>;
  /** Writes events that belong to no change (a refused or failed call), each in its own statement. */
  insert(events: Array<Omit<AuditRecord, "id" | "deviceId">>): Promise<AuditRecord[]>;
  /** Deletes events older than `before`; returns how many. */
  deleteBefore(before: Date): Promise<number>;
}
