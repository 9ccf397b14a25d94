import { type DescField, type DescMessage, isFieldSet } from "@bufbuild/protobuf";
import { ConnectError, type Interceptor } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { Clock } from "../core/clock.js";
import type { AuditCredential, AuditRepository, AuditStamp, PendingAudit } from "../core/ports/audit.js";
import type { Counters } from "../core/ports/counters.js";
import { endAudit, runAudited } from "../store/audit-context.js";
import { kPrincipal, type Principal, principalName } from "./auth.js";
import { kRequestId } from "./observe.js";
import { kVia } from "./via.js";

/**
 * Methods that change nothing, by name: reads, streams, dry runs. Everything else on the app API
 * is a mutating call and is audited. (tests/integration/audit.test.ts walks the descriptors and
 * holds its own list, so a new method is audited unless someone decides otherwise there too.)
 */
const READS = /^(Get|List|Watch|Query|Count|Check|Describe|Stream|Preview|Search)[A-Z]/;

/**
 * Services not audited here. AuthService: Login and Refresh come before there is a principal (a
 * stranger's guesses must not fill the table; the login throttle and the `login refused` log
 * record them), Logout is called with only a refresh token. DeviceGatewayService: a device's
 * acks, results and polls are its task's lifecycle (recorded on the task), not a mutating call,
 * and are the hot path.
 */
const NOT_AUDITED_SERVICES = new Set(["tether.v1.AuthService", "tether.device.v1.DeviceGatewayService", "grpc.health.v1.Health"]);

/** Whether calls to `service` are audited at all. */
const auditedService = (service: string) => !NOT_AUDITED_SERVICES.has(service) && !service.startsWith("grpc.reflection.");

/** Whether a call of `service/method` is audited by the interceptor. */
export function isAuditedMethod(service: string, method: string): boolean {
  return auditedService(service) && !READS.test(method);
}

/**
 * Whether a call is audited given the client it came through: a unary read is audited too when it
 * comes through the MCP server (`via: mcp`), so what an AI agent looked at is on record beside what
 * it changed. Other clients' reads are not (they would drown the log, and the API serves them by the thousand).
 */
function audited(service: string, method: string, via: string | undefined): boolean {
  return auditedService(service) && (via === "mcp" || !READS.test(method));
}

/** Request fields that say how or where, not what changed. */
const NOT_CHANGES = new Set(["name", "parent", "etag", "request_id", "validate_only", "update_mask", "current_password", "wait_for", "wait_timeout"]);
/** Bounds on what a request can make us store (the request itself is bounded by TETHER_API_READ_MAX_BYTES). */
const MAX_RESOURCE = 512;
const MAX_PATHS = 64;
const MAX_PATH = 128;
const RESOURCE_NAME = /^[a-z][A-Za-z]*\/[^/\s]+/;

type Msg = Record<string, unknown>;

/** The resource message of a request (CreateDeviceRequest.device, UpdateRuleRequest.rule): a tether.v1 message with a `name`. */
function resourceField(desc: DescMessage): (DescField & { fieldKind: "message" }) | undefined {
  return desc.fields.find(
    (f): f is DescField & { fieldKind: "message" } =>
      f.fieldKind === "message" && f.message.typeName.startsWith("tether.v1.") && f.message.fields.some((g) => g.name === "name"),
  );
}

/**
 * The resource a request names: its `name`, its resource's `name` (updates), `{parent}/{collection}/{id}`
 * from a create's `{x}_id`, or its `parent`. A store that assigns the id (a new task) names it itself.
 */
export function resourceOf(desc: DescMessage, msg: Msg): string {
  const str = (field: string) => {
    const f = desc.fields.find((x) => x.name === field && x.fieldKind === "scalar");
    const v = f ? msg[f.localName] : undefined;
    return typeof v === "string" ? v : "";
  };
  const res = resourceField(desc);
  const inner = res ? (msg[res.localName] as Msg | undefined) : undefined;
  const named = str("name") || (typeof inner?.name === "string" ? inner.name : "");
  let out = named;
  if (!out && res) {
    const idField = desc.fields.find((f) => f.name === `${res.name}_id` && f.fieldKind === "scalar");
    const id = idField ? String(msg[idField.localName] ?? "") : "";
    const collection = `${res.message.name[0]!.toLowerCase()}${res.message.name.slice(1)}s`;
    if (id) out = `${str("parent") ? `${str("parent")}/` : ""}${collection}/${id}`;
  }
  // Otherwise the first field holding a resource name (AddGroupMemberRequest.group).
  const named2 = () =>
    desc.fields.map((f) => (f.fieldKind === "scalar" ? msg[f.localName] : undefined)).find((v): v is string => typeof v === "string" && RESOURCE_NAME.test(v));
  return (out || str("parent") || named2() || "").slice(0, MAX_RESOURCE);
}

/** The paths a request changes: its update mask, else the fields it sets on its resource, else its own set fields. Names only, never values. */
export function fieldPathsOf(desc: DescMessage, msg: Msg): string[] {
  const mask = desc.fields.find((f) => f.name === "update_mask");
  const masked = mask ? (msg[mask.localName] as { paths?: string[] } | undefined)?.paths : undefined;
  let paths: string[];
  if (masked && masked.length > 0) paths = masked;
  else {
    const res = resourceField(desc);
    const inner = res ? (msg[res.localName] as Msg | undefined) : undefined;
    if (res && inner) paths = setFields(res.message, inner);
    else paths = setFields(desc, msg);
  }
  return paths.slice(0, MAX_PATHS).map((p) => p.slice(0, MAX_PATH));
}

function setFields(desc: DescMessage, msg: Msg): string[] {
  return desc.fields.filter((f) => !NOT_CHANGES.has(f.name) && isFieldSet(msg as never, f)).map((f) => f.name);
}

function credentialOf(p: Principal): AuditCredential {
  return p.via === "certificate" ? "certificate" : p.via === "api_key" ? "api_key" : "token";
}

export interface AuditInterceptorOptions {
  /** Writes the events of failed calls and of calls that changed nothing (no transaction to join). */
  audit: AuditRepository;
  clock: Clock;
  counters: Counters;
  log: Logger;
}

/**
 * Audits every mutating call. The call runs with its pending event in its async context, and the
 * store method that makes the change writes it in the change's transaction
 * (src/store/audit-context.ts). What is left after the call is written here, after it:
 * - a refused or failed call, with its gRPC code (only when the caller is known: an
 *   unauthenticated stranger cannot fill the table; such refusals are logged as `call refused`);
 * - a call that succeeded without a change to join (an idempotent repeat, a member already in
 *   the group), with code 0, counted as `after_call`.
 * Placed outside the error mapping (it sees the code the client sees) and outside auth (it sees
 * auth's refusals); the principal is read when the event is written, once auth has set it.
 */
export function auditInterceptor(opts: AuditInterceptorOptions): Interceptor {
  // Labelled by method too (a bounded set: unknown methods never reach interceptors), so a call
  // whose change does not carry its event shows as `after_call` for that method.
  const count = (how: string, method: string) => opts.counters.inc("tether_audit_events_total", { how, method });
  return (next) => async (req) => {
    const values = req.contextValues;
    if (req.stream || !audited(req.service.typeName, req.method.name, values.get(kVia))) return next(req);
    const principal = () => values.get(kPrincipal);
    const stamp: AuditStamp = {
      get principal() {
        const p = principal();
        return p ? principalName(p) : "";
      },
      get credential() {
        const p = principal();
        return p ? credentialOf(p) : "token";
      },
      get certificateSerial() {
        const p = principal();
        return p?.via === "certificate" ? (p.serialNumber ?? "") : "";
      },
      method: `${req.service.typeName}/${req.method.name}`,
      requestId: values.get(kRequestId),
      time: opts.clock.now(),
      via: values.get(kVia),
    };
    const msg = req.message as unknown as Msg;
    const pending: PendingAudit = {
      stamp,
      resource: resourceOf(req.method.input, msg),
      fieldPaths: fieldPathsOf(req.method.input, msg),
      written: false,
    };
    const after = async (statusCode: number) => {
      if (!principal()) return;
      try {
        await opts.audit.insert([{ ...stamp, resource: pending.resource, fieldPaths: statusCode === 0 ? pending.fieldPaths : [], statusCode }]);
        count(statusCode === 0 ? "after_call" : "failed_call", stamp.method);
      } catch (err) {
        opts.log.error({ err, method: stamp.method, requestId: stamp.requestId }, "audit event not written");
      }
    };
    try {
      const res = await runAudited(pending, () => next(req));
      endAudit(pending);
      if (pending.written) count("with_change", stamp.method);
      else await after(0);
      return res;
    } catch (err) {
      endAudit(pending);
      // A change that committed before a later step failed keeps its (OK) event: the change happened.
      if (!pending.written) await after(ConnectError.from(err).code);
      throw err;
    }
  };
}
