import { AsyncLocalStorage } from "node:async_hooks";
import type { AuditRecord, AuditStamp, PendingAudit } from "../core/ports/audit.js";
import type { Sql } from "./database.js";

// How an audit event reaches the transaction of its change without an argument threaded through
// every service and repository: the API's audit interceptor runs each mutating call inside an
// AsyncLocalStorage holding the call's PendingAudit, and the store methods that make a change
// (`auditedChange`, or `auditCall` inside their own transaction) add it to their transaction,
// whose COMMIT then carries it (src/store/transaction.ts). Only those methods write it: a
// transaction the call merely causes (a dispatch pass kicked after CreateTask, a login-throttle
// reservation) never does, and neither does anything once the event was written or the call ended.
// The group commits never read the context while flushing (the flush runs in whichever caller's
// context scheduled it): each item carries its caller's PendingAudit (`NewTask.audit`) instead.

const calls = new AsyncLocalStorage<PendingAudit>();

/** Runs a call with its audit event pending in its async context. */
export function runAudited<T>(pending: PendingAudit, fn: () => T): T {
  return calls.run(pending, fn);
}

/** Runs `fn` outside any call's audit context (a group commit's flush, a firing). */
export function outsideAudit<T>(fn: () => T): T {
  return calls.exit(fn);
}

/** The current call's audit event if it is still to be written (and the call has not ended). */
export function pendingAudit(): PendingAudit | undefined {
  const p = calls.getStore();
  return p && !p.written && !ended.has(p) ? p : undefined;
}

/** Events of calls that returned: detached work they started (a dispatch pass) writes nothing for them. */
const ended = new WeakSet<PendingAudit>();
/** Marks a call's audit event as no longer writable by its change (the interceptor, once the call returned). */
export function endAudit(p: PendingAudit): void {
  ended.add(p);
}

/** Events queued on each open transaction, inserted just before its COMMIT. */
const queued = new WeakMap<object, PendingAudit[]>();
/** Events some transaction has queued and not yet committed or rolled back: a second one must not take them too. */
const claimed = new WeakSet<PendingAudit>();

/**
 * Queues events on transaction `tx` (a reserved connection inside `withTransaction`). `resource`
 * names what the change created when the request could not (a server-assigned id).
 */
export function auditWith(tx: object, events: ReadonlyArray<PendingAudit | undefined>): void {
  const list = queued.get(tx);
  if (!list) throw new Error("auditWith outside withTransaction");
  for (const p of events) {
    if (!p || p.written || claimed.has(p)) continue;
    claimed.add(p);
    list.push(p);
  }
}

/**
 * An event of work Tether does on its own (a rule firing, a job step, a renewal over MQTT), to
 * queue on the transaction that does it with `auditWith`.
 */
export function ownAudit(e: {
  principal: string;
  credential?: AuditStamp["credential"];
  certificateSerial?: string;
  method: string;
  resource: string;
  time: Date;
  fieldPaths?: string[];
  deviceId?: string;
}): PendingAudit {
  return {
    stamp: {
      principal: e.principal,
      credential: e.credential ?? "internal",
      certificateSerial: e.certificateSerial ?? "",
      method: e.method,
      requestId: "",
      time: e.time,
    },
    resource: e.resource,
    fieldPaths: e.fieldPaths ?? [],
    deviceId: e.deviceId,
    written: false,
  };
}

/** The pending event, naming the resource the change created (a task's server-assigned id). */
export function withResource(p: PendingAudit, resource: string): PendingAudit {
  p.resource = resource;
  return p;
}

/**
 * The item a group commit is handed, carrying the submitting call's audit event: read here, at
 * submit time, in the caller's own context (the flush runs in someone else's).
 */
export function withCallAudit<T extends { audit?: PendingAudit }>(item: T): T {
  const p = pendingAudit();
  return p ? { ...item, audit: p } : item;
}

/** Queues the current call's pending event on `tx`, if any, naming `resource` when given. */
export function auditCall(tx: object, resource?: string): void {
  const p = pendingAudit();
  if (!p) return;
  if (resource) p.resource = resource;
  auditWith(tx, [p]);
}

/** Whether `q` is a connection withTransaction holds a transaction open on. */
export function inTransaction(q: object): boolean {
  return queued.has(q);
}

/** For withTransaction: opens the queue of a transaction. */
export function openAuditQueue(tx: object): void {
  queued.set(tx, []);
}

/** For withTransaction: the events to insert before COMMIT (empty: nothing to do). */
export function takeAuditQueue(tx: object): PendingAudit[] {
  const list = queued.get(tx) ?? [];
  queued.delete(tx);
  return list;
}

/** For withTransaction: the transaction rolled back, so its events may go with a later one (or be written as failed). */
export function releaseAudit(events: readonly PendingAudit[]): void {
  for (const p of events) claimed.delete(p);
}

/** Where committed events go next (the audit feed, for WatchAuditEvents), per database pool. */
const sinks = new WeakMap<Sql, (events: AuditRecord[]) => void>();
export function onAuditCommitted(sql: Sql, sink: (events: AuditRecord[]) => void): void {
  sinks.set(sql, sink);
}
export function auditSink(sql: Sql): ((events: AuditRecord[]) => void) | undefined {
  return sinks.get(sql);
}
