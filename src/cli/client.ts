import { readFileSync } from "node:fs";
import path from "node:path";
import type { DescService } from "@bufbuild/protobuf";
import { type Client, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

export interface ClientOptions {
  /** e.g. `https://localhost:8443`. @default $TETHER_ADDRESS or https://localhost:$TETHER_PORT */
  address?: string;
  /** Folder holding `ca.crt` and the client certificate. @default $TETHER_CERTS_DIR or ./certs */
  certsDir?: string;
  /** Base name of the client certificate files (`admin` → admin.crt/admin.key). @default admin */
  identity?: string;
}

/** A gRPC client authenticated with a client certificate from the PKI folder. */
export function connectClient<S extends DescService>(service: S, opts: ClientOptions = {}): Client<S> {
  const certsDir = path.resolve(opts.certsDir ?? process.env.TETHER_CERTS_DIR ?? "certs");
  const identity = opts.identity ?? "admin";
  const address = opts.address ?? process.env.TETHER_ADDRESS ?? `https://localhost:${process.env.TETHER_PORT ?? 8443}`;
  const read = (f: string) => {
    try {
      return readFileSync(path.join(certsDir, f));
    } catch {
      throw new Error(`cannot read ${path.join(certsDir, f)}: start the server once (npm start) to create the PKI, or set TETHER_CERTS_DIR`);
    }
  };
  const transport = createGrpcTransport({
    baseUrl: address,
    nodeOptions: { ca: read("ca.crt"), cert: read(`${identity}.crt`), key: read(`${identity}.key`) },
  });
  return createClient(service, transport);
}
