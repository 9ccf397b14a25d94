import type { TLSSocket } from "node:tls";
import { Code, ConnectError, createContextKey, createContextValues } from "@connectrpc/connect";
import type { ContextValues, Interceptor } from "@connectrpc/connect";
import type { Http2ServerRequest } from "node:http2";
import type { IncomingMessage } from "node:http";

/** What connect-node hands to `contextValues`: an HTTP/1.1 or HTTP/2 request. */
type NodeServerRequest = IncomingMessage | Http2ServerRequest;

/** Who is calling, established from the client certificate (and, later, from a JWT). */
export interface Principal {
  /** `user` for people and tools (CLI, apps), `device` for devices, `service` for Tether itself. */
  kind: "user" | "device" | "service";
  /** The certificate CN: a user name, or the device id. */
  id: string;
}

/** The verified client certificate, if the TLS handshake presented one that chains to our CA. */
export const kPrincipal = createContextKey<Principal | undefined>(undefined, { description: "caller" });

/** Services anyone may call without credentials, so load balancers and probes can check health. */
const PUBLIC_SERVICES = new Set(["grpc.health.v1.Health"]);

/**
 * Builds the per-request context: the principal from the mTLS peer certificate. The TLS server
 * asks for a certificate but does not abort the handshake without one, so a caller without a
 * valid certificate gets a proper UNAUTHENTICATED status instead of a bare connection reset.
 */
export function contextValuesFromRequest(req: NodeServerRequest): ContextValues {
  const values = createContextValues();
  const socket = req.socket as TLSSocket;
  if (socket.authorized) {
    const cert = socket.getPeerCertificate();
    const cn = typeof cert.subject?.CN === "string" ? cert.subject.CN : "";
    const ou = typeof cert.subject?.OU === "string" ? cert.subject.OU : "";
    if (cn !== "") values.set(kPrincipal, { kind: ou === "devices" ? "device" : ou === "services" ? "service" : "user", id: cn });
  }
  return values;
}

/** Refuses calls without a verified principal (except public services), and devices on the app API. */
export function authInterceptor(): Interceptor {
  return (next) => async (req) => {
    if (PUBLIC_SERVICES.has(req.service.typeName)) return next(req);
    const principal = req.contextValues.get(kPrincipal);
    if (!principal) {
      throw new ConnectError("a client certificate issued by this Tether's CA is required", Code.Unauthenticated);
    }
    if (principal.kind === "device") {
      throw new ConnectError(`device ${principal.id} may not call ${req.service.typeName}`, Code.PermissionDenied);
    }
    return next(req);
  };
}
