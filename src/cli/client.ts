import { readFileSync } from "node:fs";
import path from "node:path";
import type { DescService } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { type Client, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AuthService } from "../../gen/tether/v1/auth_service_pb.js";
import { loadSession, saveSession, type StoredSession } from "./credentials.js";

export interface ClientOptions {
  /** e.g. `https://localhost:8443`. @default $TETHER_ADDRESS or https://localhost:$TETHER_PORT */
  address?: string;
  /** Folder holding `ca.crt` and the client certificate. @default $TETHER_CERTS_DIR or ./certs */
  certsDir?: string;
  /** Base name of the client certificate files (`admin` → admin.crt/admin.key). @default admin */
  identity?: string;
  /** Explicit client certificate and key files (e.g. a claim certificate); override `identity` and any login. */
  identityFiles?: { cert: string; key: string };
  /** The credentials file (tests). @default see credentials.ts */
  credentialsFile?: string;
  /**
   * An API key (`tether_…`) to send as the bearer credential instead of a login or certificate.
   * @default $TETHER_API_KEY
   */
  apiKey?: string;
}

export function resolveAddress(opts: ClientOptions): string {
  return opts.address ?? process.env.TETHER_ADDRESS ?? `https://localhost:${process.env.TETHER_PORT ?? 8443}`;
}

/** The PKI folder the CLI uses: `--certs`, else $TETHER_CERTS_DIR, else ./certs. */
export function certsDirOf(opts: ClientOptions): string {
  return path.resolve(opts.certsDir ?? process.env.TETHER_CERTS_DIR ?? "certs");
}

function read(dir: string, f: string): Buffer {
  try {
    return readFileSync(path.join(dir, f));
  } catch {
    throw new Error(`cannot read ${path.join(dir, f)}: start the server once (npm start) to create the PKI, or set TETHER_CERTS_DIR`);
  }
}

/** The CA to trust: `ca.crt` from the certs folder if there is one, else the system's CAs. */
function caOf(dir: string): Buffer | undefined {
  try {
    return readFileSync(path.join(dir, "ca.crt"));
  } catch {
    return undefined;
  }
}

/** A client that authenticates with nothing (for Login and Refresh). */
export function anonymousClient<S extends DescService>(service: S, opts: ClientOptions = {}): Client<S> {
  return createClient(service, createGrpcTransport({ baseUrl: resolveAddress(opts), nodeOptions: { ca: caOf(certsDirOf(opts)) } }));
}

/**
 * A gRPC client. After `tether login` it sends the stored access token (refreshing it when it
 * is about to expire); otherwise it authenticates with a client certificate from the PKI folder.
 */
export function connectClient<S extends DescService>(service: S, opts: ClientOptions = {}): Client<S> {
  return createClient(service, cliTransport(opts));
}

/**
 * The transport connectClient's clients use, for a caller that calls many services on one
 * connection (`tether mcp`). `interceptors` run before the credential is added.
 */
export function cliTransport(opts: ClientOptions = {}, interceptors: Interceptor[] = []): Transport {
  const certsDir = certsDirOf(opts);
  const address = resolveAddress(opts);
  // A claim (or other explicit) certificate must be used as is, even after `tether login`.
  const apiKey = opts.identityFiles ? undefined : (opts.apiKey ?? process.env.TETHER_API_KEY) || undefined;
  if (apiKey) {
    const withKey: Interceptor = (next) => (req) => {
      req.header.set("authorization", `Bearer ${apiKey}`);
      return next(req);
    };
    return createGrpcTransport({ baseUrl: address, nodeOptions: { ca: caOf(certsDir) }, interceptors: [...interceptors, withKey] });
  }
  const session = opts.identityFiles ? undefined : loadSession(address, opts.credentialsFile);
  if (session) {
    return createGrpcTransport({ baseUrl: address, nodeOptions: { ca: caOf(certsDir) }, interceptors: [...interceptors, bearer(address, session, opts)] });
  }
  const identity = opts.identity ?? "admin";
  return createGrpcTransport({
    baseUrl: address,
    interceptors,
    nodeOptions: opts.identityFiles
      ? { ca: read(certsDir, "ca.crt"), cert: readFileSync(opts.identityFiles.cert), key: readFileSync(opts.identityFiles.key) }
      : { ca: read(certsDir, "ca.crt"), cert: read(certsDir, `${identity}.crt`), key: read(certsDir, `${identity}.key`) },
  });
}

/** Adds the bearer token; refreshes (and stores) the pair a minute before the access token expires. */
function bearer(address: string, initial: StoredSession, opts: ClientOptions): Interceptor {
  let session = initial;
  let refreshing: Promise<void> | undefined;
  const refresh = async () => {
    if (Date.parse(session.refreshExpireTime) <= Date.now()) throw new Error(`the session of ${session.user} at ${address} expired: run tether login`);
    const res = await anonymousClient(AuthService, opts)
      .refresh({ refreshToken: session.refreshToken })
      .catch((err: unknown) => {
        throw new Error(`the session of ${session.user} at ${address} ended (${err instanceof Error ? err.message : String(err)}): run tether login`);
      });
    session = {
      user: session.user,
      accessToken: res.accessToken,
      accessExpireTime: timestampDate(res.accessTokenExpireTime!).toISOString(),
      refreshToken: res.refreshToken,
      refreshExpireTime: timestampDate(res.refreshTokenExpireTime!).toISOString(),
    };
    saveSession(address, session, opts.credentialsFile);
  };
  return (next) => async (req) => {
    if (Date.parse(session.accessExpireTime) - Date.now() < 60_000) await (refreshing ??= refresh().finally(() => (refreshing = undefined)));
    req.header.set("authorization", `Bearer ${session.accessToken}`);
    return next(req);
  };
}
