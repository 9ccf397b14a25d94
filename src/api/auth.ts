import type { TLSSocket } from "node:tls";
import { Code, ConnectError, createContextKey, createContextValues } from "@connectrpc/connect";
import type { ContextValues, HandlerContext, Interceptor } from "@connectrpc/connect";
import type { Http2ServerRequest } from "node:http2";
import type { IncomingMessage } from "node:http";
import type { Logger } from "pino";
import { type Access, withPrincipal } from "../core/access/access.js";
import { TetherError } from "../core/errors.js";
import { normalizeSerial } from "../core/certificates/certificate-name.js";
import type { PresentedCertificate } from "../core/certificates/certificate-gate.js";
import { kVia, VIA_HEADER, viaFromHeader } from "./via.js";

/** What connect-node hands to `contextValues`: an HTTP/1.1 or HTTP/2 request. */
type NodeServerRequest = IncomingMessage | Http2ServerRequest;

/** Who is calling, established from the client certificate or a bearer credential. */
export interface Principal {
  /**
   * `user` for people and tools (CLI, apps), `device` for devices, `service` for Tether itself,
   * `claim` for a provisioning claim certificate (allowed ProvisionDevice only).
   */
  kind: "user" | "device" | "service" | "claim";
  /** The certificate CN or the token's subject: a user name, the device id, or (claims) the template id. */
  id: string;
  /** How the caller proved it. */
  via: "certificate" | "token" | "api_key";
  /** The client certificate's serial number, lowercase hex (certificates only): what revocation is checked against. */
  serialNumber?: string;
  /** The client certificate's start of validity (certificates only). */
  notBefore?: Date;
  /** The API key's id (API keys only). */
  keyId?: string;
}

/**
 * The principal as a resource name, as audit events and `Task.creator` name it:
 * `users/{user}` (certificate or access token), `users/{user}/apiKeys/{key}`, `services/{s}`,
 * `devices/{d}`, `provisioningTemplates/{t}` (a claim certificate).
 */
export function principalName(p: Principal): string {
  switch (p.kind) {
    case "user":
      return p.via === "api_key" && p.keyId ? `users/${p.id}/apiKeys/${p.keyId}` : `users/${p.id}`;
    case "service":
      return `services/${p.id}`;
    case "device":
      return `devices/${p.id}`;
    case "claim":
      return `provisioningTemplates/${p.id}`;
  }
}

/** The one method a claim certificate may call. */
export const PROVISION_DEVICE_METHOD = "ProvisionDevice";
const PROVISIONING_SERVICE = "tether.v1.ProvisioningService";

const KINDS: Record<string, Principal["kind"]> = { devices: "device", services: "service", claims: "claim" };

/** The verified caller. Set from the client certificate, replaced by the auth interceptor for a bearer token. */
export const kPrincipal = createContextKey<Principal | undefined>(undefined, { description: "caller" });
/** The raw `authorization: Bearer` credential, if any (verified by the interceptor; never logged). */
export const kBearer = createContextKey<string | undefined>(undefined, { description: "bearer credential" });
/** The client's address, for login rate limiting. */
export const kPeerAddress = createContextKey<string>("", { description: "client address" });
/** What the caller may do, resolved once per call by the auth interceptor. */
/**
 * Ends this call's HTTP/2 stream at once with RST_STREAM ENHANCE_YOUR_CALM (gRPC clients see
 * RESOURCE_EXHAUSTED): how a watch cuts off a consumer that stopped reading, whose stream is stuck
 * behind HTTP/2 flow control so no error can be written to it.
 */
export const kCutOff = createContextKey<() => void>(() => {}, { description: "reset this call's stream" });
export const kAccess = createContextKey<Access | undefined>(undefined, { description: "caller's rights" });

/** Services anyone may call without credentials, so load balancers and probes can check health. */
const PUBLIC_SERVICES = new Set(["grpc.health.v1.Health"]);
/** Methods callable without credentials: signing in needs no prior sign-in. */
const PUBLIC_METHODS = new Set(["tether.v1.AuthService/Login", "tether.v1.AuthService/Refresh", "tether.v1.AuthService/Logout"]);

/**
 * Builds the per-request context: the principal from the mTLS peer certificate, and the bearer
 * credential from the `authorization` header. The TLS server asks for a certificate but does not
 * abort the handshake without one, so JWT-only clients (browsers) get through to the interceptor.
 */
export function contextValuesFromRequest(req: NodeServerRequest): ContextValues {
  const values = createContextValues();
  const socket = req.socket as TLSSocket;
  values.set(kPeerAddress, socket.remoteAddress ?? "");
  const stream = (req as Partial<Http2ServerRequest>).stream;
  if (stream) values.set(kCutOff, () => void (stream.closed || stream.close(0xb /* NGHTTP2_ENHANCE_YOUR_CALM */)));
  if (socket.authorized) {
    // HTTP/2's req.socket is a new proxy per request; the session is the connection.
    const principal = certificatePrincipal(stream?.session ?? socket, socket);
    if (principal) values.set(kPrincipal, principal);
  }
  const via = viaFromHeader(req.headers[VIA_HEADER]);
  if (via) values.set(kVia, via);
  const auth = req.headers.authorization;
  if (typeof auth === "string") {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    values.set(kBearer, m ? m[1]! : "");
  }
  return values;
}

/**
 * The principal a client certificate names, read once per TLS connection: the peer certificate
 * cannot change on a connection, and decoding it (getPeerCertificate) on every call of an HTTP/2
 * connection cost a measurable share of each call. Revocation is still checked per call, by
 * serial, where the principal is used.
 */
const principals = new WeakMap<object, Principal | null>();
function certificatePrincipal(connection: object, socket: TLSSocket): Principal | undefined {
  let p = principals.get(connection);
  if (p === undefined) {
    const cert = socket.getPeerCertificate();
    const cn = typeof cert.subject?.CN === "string" ? cert.subject.CN : "";
    const ou = typeof cert.subject?.OU === "string" ? cert.subject.OU : "";
    const serialNumber = normalizeSerial(cert.serialNumber ?? "");
    p =
      cn === "" ? null : Object.freeze({ kind: KINDS[ou] ?? "user", id: cn, via: "certificate", serialNumber, notBefore: new Date(cert.valid_from) } as const);
    principals.set(connection, p);
  }
  return p ?? undefined;
}

export interface AuthOptions {
  /** Verifies a bearer credential (access token or API key) and returns the user it belongs to (and a token's session). */
  authenticate(bearer: string): Promise<{ user: string; via: "token" | "api_key"; session?: string; keyId?: string }>;
  /**
   * Calls `onEnd` when an access token's session ends (SessionRevocations.watch); returns the
   * function that stops watching. Streams opened with the token then end with UNAUTHENTICATED.
   */
  watchSession?: (session: string, onEnd: () => void) => () => void;
  /** Resolves what a principal may do; UnauthenticatedError for a token of a user that no longer exists. */
  accessFor(principal: Principal): Promise<Access>;
  /**
   * The device-facing services (the HTTP device gateway). Only devices may call them, and devices
   * may call nothing else: an app speaking as a device could otherwise report on any device's tasks.
   */
  deviceServices?: readonly string[];
  /** Revoked client certificates are refused with UNAUTHENTICATED, on every call, whatever else the call carries. */
  isRevoked?: (serialNumber: string) => boolean;
  /**
   * Asked for every call made with a device or claim certificate (see
   * core/certificates/certificate-gate.ts): a reason refuses the call with UNAUTHENTICATED.
   */
  checkCertificate?: (c: PresentedCertificate) => Promise<string | undefined>;
  log: Logger;
}

/**
 * Authenticates every call (bearer credential first, else the client certificate), keeps devices
 * to the device-facing services and claim certificates to ProvisionDevice, refuses revoked
 * certificates, and resolves the caller's rights into `kAccess` for the handlers.
 * Each refusal is logged with its reason; the credential itself never is.
 */
export function authInterceptor(opts: AuthOptions): Interceptor {
  const deviceServices = new Set(opts.deviceServices ?? []);
  return (next) => async (req) => {
    const procedure = `${req.service.typeName}/${req.method.name}`;
    if (PUBLIC_SERVICES.has(req.service.typeName) || PUBLIC_METHODS.has(procedure)) return next(req);
    const refuse = (reason: string, code: Code, message: string): never => {
      opts.log.warn({ procedure, reason, address: req.contextValues.get(kPeerAddress) }, "call refused");
      throw new ConnectError(message, code);
    };
    const bearer = req.contextValues.get(kBearer);
    let principal = req.contextValues.get(kPrincipal);
    let session: string | undefined;
    // A revoked certificate is refused even when the call also carries a valid token.
    const serial = principal?.serialNumber;
    if (serial && opts.isRevoked?.(serial)) {
      refuse(`revoked certificate ${serial} (${principal!.kind} ${principal!.id})`, Code.Unauthenticated, `the client certificate ${serial} has been revoked`);
    }
    if (bearer !== undefined) {
      if (bearer === "") refuse("malformed authorization header", Code.Unauthenticated, "the authorization header must be `Bearer <token>`");
      try {
        const who = await opts.authenticate(bearer);
        principal = { kind: "user", id: who.user, via: who.via, keyId: who.keyId };
        session = who.session;
      } catch (err) {
        if (err instanceof TetherError) refuse(err.message, Code.Unauthenticated, err.message);
        throw err;
      }
      req.contextValues.set(kPrincipal, principal);
    }
    if (!principal) return refuse("no credentials", Code.Unauthenticated, "a client certificate issued by this Tether's CA, or a bearer token, is required");
    if ((principal.kind === "device" || principal.kind === "claim") && principal.via === "certificate" && opts.checkCertificate) {
      const reason = await opts.checkCertificate({
        kind: principal.kind,
        commonName: principal.id,
        serialNumber: principal.serialNumber ?? "",
        notBefore: principal.notBefore ?? new Date(0),
      });
      if (reason) refuse(reason, Code.Unauthenticated, `the client certificate is refused: ${reason}`);
    }
    if (principal.kind === "claim") {
      if (req.service.typeName !== PROVISIONING_SERVICE || req.method.name !== PROVISION_DEVICE_METHOD) {
        refuse(`claim ${principal.id}`, Code.PermissionDenied, `a claim certificate may only call ${PROVISIONING_SERVICE}/${PROVISION_DEVICE_METHOD}`);
      }
      // The template is the certificate's CN; user rights do not apply.
      return next(req);
    }
    const forDevices = deviceServices.has(req.service.typeName);
    if (principal.kind === "device") {
      if (!forDevices) refuse(`device ${principal.id}`, Code.PermissionDenied, `device ${principal.id} may not call ${req.service.typeName}`);
      // A device speaks only for itself (its id is the certificate CN); user rights do not apply.
      return next(req);
    }
    if (forDevices) {
      refuse(
        `${principal.kind} ${principal.id} on a device service`,
        Code.PermissionDenied,
        `${req.service.typeName} is for devices: call it with a device certificate (OU=devices), not as ${principal.kind} ${principal.id}`,
      );
    }
    try {
      // The per-call principal rides on the (shared, cached) rights: what the call creates names it (Task.creator).
      req.contextValues.set(kAccess, withPrincipal(await opts.accessFor(principal), principalName(principal)));
    } catch (err) {
      if (err instanceof TetherError && err.code === "UNAUTHENTICATED") refuse(`${principal.id}: ${err.message}`, Code.Unauthenticated, err.message);
      throw err;
    }
    const res = await next(req);
    if (!res.stream || session === undefined || !opts.watchSession) return res;
    // A stream outlives the check above: it ends when the token's session does.
    return {
      ...res,
      message: untilSessionEnds(res.message, session, opts.watchSession, () =>
        opts.log.warn({ procedure, user: principal.id }, "stream ended: its session ended"),
      ),
    };
  };
}

/** The stream's messages, ended with UNAUTHENTICATED when the session of the access token that opened it ends. */
async function* untilSessionEnds<T>(
  messages: AsyncIterable<T>,
  session: string,
  watch: NonNullable<AuthOptions["watchSession"]>,
  onEnd: () => void,
): AsyncIterable<T> {
  let end: (err: ConnectError) => void = () => {};
  const ended = new Promise<never>((_, reject) => (end = reject));
  ended.catch(() => {}); // observed through the race below
  const unwatch = watch(session, () => {
    onEnd();
    end(new ConnectError("the session of this access token ended (logged out, refresh token reused or password changed); sign in again", Code.Unauthenticated));
  });
  const it = messages[Symbol.asyncIterator]();
  try {
    for (;;) {
      const r = await Promise.race([it.next(), ended]);
      if (r.done) return;
      yield r.value;
    }
  } finally {
    unwatch();
    // Not awaited: a handler waiting for its next event finishes when the call's signal aborts.
    void it.return?.(undefined)?.catch(() => {});
  }
}

/** The caller's rights, set by the auth interceptor (a handler reached without it is a wiring bug). */
export function accessOf(ctx: HandlerContext): Access {
  const access = ctx.values.get(kAccess);
  if (!access) throw new ConnectError("internal error", Code.Internal, undefined, undefined, new Error("no Access in context: authInterceptor missing"));
  return access;
}
