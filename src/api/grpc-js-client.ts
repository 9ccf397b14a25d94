/**
 * A @grpc/grpc-js client built from a protobuf-es service descriptor.
 *
 * Why: tests and the CLI want a client that is independent of connect-es (so a server bug is not
 * hidden by the same library on both ends) and that speaks real gRPC over HTTP/2 the way grpc-go,
 * Java and grpcurl do. grpc-js normally needs its own codegen (`@grpc/proto-loader` or
 * `grpc-tools`); instead we derive its `ServiceDefinition` from the descriptors protoc-gen-es already
 * generated, with protobuf-es doing the (de)serialisation. One codegen, one set of message types.
 *
 * The promise/stream helpers below call `Client.makeUnaryRequest` & co. directly with the same
 * definitions, so they need no `any`-typed method lookups on the generic client.
 *
 * @module
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { DescMessage, DescMethod, DescService, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";

type MethodKind = DescMethod["methodKind"];
type Methods<S extends DescService> = S["method"];

/** Local (camelCase) names of the methods of `S` with the given kind, e.g. `"createDevice"`. */
export type MethodName<S extends DescService, K extends MethodKind = MethodKind> = {
  [N in keyof Methods<S> & string]: Methods<S>[N] extends { methodKind: K } ? N : never;
}[keyof Methods<S> & string];

/** What a caller may pass as the request: a message or a plain init object (`create()` input). */
export type MethodInput<S extends DescService, N extends keyof Methods<S>> = Methods<S>[N] extends { input: infer I extends DescMessage }
  ? MessageInitShape<I>
  : never;

/** The decoded response message type. */
export type MethodOutput<S extends DescService, N extends keyof Methods<S>> = Methods<S>[N] extends { output: infer O extends DescMessage }
  ? MessageShape<O>
  : never;

/** The raw grpc-js client: a `grpc.Client` with one method per RPC (camelCase and original name). */
export type GenericGrpcClient = InstanceType<grpc.ServiceClientConstructor>;

export interface GrpcJsClient<S extends DescService> {
  /** The underlying grpc-js client, for call shapes the helpers below do not cover. */
  readonly client: GenericGrpcClient;
  /** The generated-style definition, reusable e.g. for a grpc-js *server* in tests. */
  readonly definition: grpc.ServiceDefinition;
  /**
   * Calls a unary method. Rejects with the grpc-js `ServiceError`, so callers see `.code` as a
   * gRPC status number (`grpc.status.NOT_FOUND` = 5) and `.details` / `.metadata` as sent.
   */
  unary<N extends MethodName<S, "unary">>(
    method: N,
    request: MethodInput<S, N>,
    metadata?: grpc.Metadata,
    options?: grpc.CallOptions,
  ): Promise<MethodOutput<S, N>>;
  /** Starts a server-streaming call; the result is async-iterable and has `cancel()`. */
  serverStream<N extends MethodName<S, "server_streaming">>(
    method: N,
    request: MethodInput<S, N>,
    metadata?: grpc.Metadata,
    options?: grpc.CallOptions,
  ): grpc.ClientReadableStream<MethodOutput<S, N>>;
  /** Starts a bidi call: `write()` requests, `end()` to half-close, async-iterate the responses. */
  bidiStream<N extends MethodName<S, "bidi_streaming">>(
    method: N,
    metadata?: grpc.Metadata,
    options?: grpc.CallOptions,
  ): grpc.ClientDuplexStream<MethodInput<S, N>, MethodOutput<S, N>>;
  /** Closes the channel (open calls are cancelled). */
  close(): void;
}

/**
 * Builds the grpc-js `ServiceDefinition` for a protobuf-es service descriptor. Keys are the
 * methods' `localName` (what grpc-js clients conventionally expose); `originalName` keeps the
 * proto name so `client.CreateDevice` works too.
 */
export function grpcServiceDefinition(service: DescService): grpc.ServiceDefinition {
  // grpc.ServiceDefinition's index signature is readonly, so build it in one expression.
  return Object.fromEntries(service.methods.map((m) => [m.localName, methodDefinition(service, m)]));
}

function methodDefinition(service: DescService, method: DescMethod): grpc.MethodDefinition<unknown, unknown> {
  const kind = method.methodKind;
  return {
    path: `/${service.typeName}/${method.name}`,
    originalName: method.name,
    requestStream: kind === "client_streaming" || kind === "bidi_streaming",
    responseStream: kind === "server_streaming" || kind === "bidi_streaming",
    // create() returns a message unchanged and turns a plain init object into one, so callers
    // of the raw client may pass either.
    requestSerialize: (value) => Buffer.from(toBinary(method.input, create(method.input, value as MessageInitShape<DescMessage>))),
    requestDeserialize: (bytes: Buffer) => fromBinary(method.input, bytes),
    responseSerialize: (value) => Buffer.from(toBinary(method.output, create(method.output, value as MessageInitShape<DescMessage>))),
    responseDeserialize: (bytes: Buffer) => fromBinary(method.output, bytes),
  };
}

/**
 * Creates a grpc-js client for `service` at `address` ("host:port", or any grpc-js target such as
 * "dns:///host:443" or "unix:///path").
 *
 * @param credentials e.g. `grpc.credentials.createInsecure()` for h2c, or
 *   `grpc.credentials.createSsl(ca, key, cert)` for mTLS.
 * @param options grpc-js channel options, e.g. `{ "grpc.ssl_target_name_override": "localhost" }`.
 */
export function createGrpcJsClient<S extends DescService>(
  service: S,
  address: string,
  credentials: grpc.ChannelCredentials,
  options?: grpc.ClientOptions,
): GrpcJsClient<S> {
  const definition = grpcServiceDefinition(service);
  const Ctor = grpc.makeGenericClientConstructor(definition, service.name);
  const client = new Ctor(address, credentials, options);

  const lookup = (name: string): grpc.MethodDefinition<unknown, unknown> => {
    const m = definition[name];
    if (!m) throw new Error(`${service.typeName} has no method "${name}"`);
    return m as grpc.MethodDefinition<unknown, unknown>;
  };

  return {
    client,
    definition,
    unary(method, request, metadata = new grpc.Metadata(), options = {}) {
      const m = lookup(method);
      return new Promise((resolve, reject) => {
        client.makeUnaryRequest(m.path, m.requestSerialize, m.responseDeserialize, request, metadata, options, (err, res) =>
          err ? reject(err) : resolve(res as MethodOutput<S, typeof method>),
        );
      });
    },
    serverStream(method, request, metadata = new grpc.Metadata(), options = {}) {
      const m = lookup(method);
      return client.makeServerStreamRequest(m.path, m.requestSerialize, m.responseDeserialize, request, metadata, options);
    },
    bidiStream(method, metadata = new grpc.Metadata(), options = {}) {
      const m = lookup(method);
      return client.makeBidiStreamRequest(m.path, m.requestSerialize, m.responseDeserialize, metadata, options);
    },
    close() {
      client.close();
    },
  } as GrpcJsClient<S>;
}
