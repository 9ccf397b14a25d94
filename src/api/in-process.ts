import { type ConnectRouter, type ContextValues, createConnectRouter, type Interceptor, type Transport } from "@connectrpc/connect";
import { createAsyncIterable, type UniversalClientFn, type UniversalHandler } from "@connectrpc/connect/protocol";
import { createTransport } from "@connectrpc/connect/protocol-connect";

export interface InProcessApiOptions {
  /** The same routes as the API port's. */
  routes: (router: ConnectRouter) => void;
  /** The same interceptors as the API port's (observe, audit, errors, auth, limits). */
  interceptors: Interceptor[];
  readMaxBytes: number;
}

/** The API's services called from inside the process, each call with context values its caller sets. */
export interface InProcessApi {
  /**
   * A transport whose calls run the API's handlers and interceptors in-process, each with the
   * context values `values()` makes for it (the caller's credential and address, as the network
   * adapter would have read them from the request), so auth, rights and the audit log see a
   * call as they see one from the network.
   */
  transport(values: () => ContextValues): Transport;
}

/**
 * connect-es's router transport, except that it hands each call the context values the caller
 * sets: `createRouterTransport` starts every call with empty ones, so the auth interceptor would
 * find no credential. The serialization is Connect binary, as over the network.
 */
export function createInProcessApi(o: InProcessApiOptions): InProcessApi {
  const router = createConnectRouter({ interceptors: o.interceptors, readMaxBytes: o.readMaxBytes, connect: true, grpc: false, grpcWeb: false });
  o.routes(router);
  const handlers = new Map<string, UniversalHandler>(router.handlers.map((h) => [h.requestPath, h]));
  return {
    transport(values) {
      const httpClient: UniversalClientFn = async (req) => {
        const handler = handlers.get(new URL(req.url).pathname);
        if (!handler) return { status: 404, header: new Headers(), body: createAsyncIterable([]), trailer: new Headers() };
        const res = await handler({
          body: req.body ?? createAsyncIterable([]),
          httpVersion: "2.0",
          method: req.method,
          url: req.url,
          header: req.header,
          signal: req.signal ?? new AbortController().signal,
          contextValues: values(),
        });
        return { status: res.status, header: new Headers(res.header), body: res.body ?? createAsyncIterable([]), trailer: new Headers(res.trailer) };
      };
      return createTransport({
        httpClient,
        baseUrl: "https://in-process",
        useBinaryFormat: true,
        interceptors: [],
        acceptCompression: [],
        sendCompression: null,
        compressMinBytes: Number.MAX_SAFE_INTEGER,
        readMaxBytes: Number.MAX_SAFE_INTEGER,
        writeMaxBytes: Number.MAX_SAFE_INTEGER,
      });
    },
  };
}
