/**
 * grpc.reflection.v1.ServerReflection, and the same under grpc.reflection.v1alpha, for the
 * connect-node server.
 *
 * Why: connect-es ships no reflection service, yet `grpcurl`, `buf curl`, Postman and gRPC UI all
 * rely on it to list services and to encode requests without local .proto files. Everything it
 * needs is already in the process: protoc-gen-es embeds each file's FileDescriptorProto in the
 * generated code (`file_tether_v1_device_service.proto`) and links its imports (`.dependencies`),
 * so the answers are built from those descriptors rather than from .proto files on disk.
 *
 * Gotchas handled here:
 * - Clients build a descriptor pool from the answer, so every answer carries the file AND all of
 *   its transitive imports (google/protobuf/*.proto included); a missing import makes grpcurl fail
 *   with "no such file". The spec lets a server skip files already sent on the same stream; we
 *   always send the full set, which is simpler and still tiny.
 * - Errors for one request go into `error_response` (gRPC status codes as numbers), not into the
 *   stream status: the bidi stream stays usable for the client's next question.
 * - Older grpcurl, Postman and several GUI clients speak only v1alpha. Its messages are v1's
 *   under another package (proto/grpc/reflection/v1alpha), identical on the wire, so the v1alpha
 *   service re-reads each request as v1, answers it with the one implementation, and re-reads
 *   the answer as v1alpha: one behaviour, two names.
 *
 * @module
 */
import { create, createFileRegistry, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { DescFile, FileRegistry } from "@bufbuild/protobuf";
import { nestedTypes } from "@bufbuild/protobuf/reflect";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import type { FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter } from "@connectrpc/connect";
import { file_grpc_health_v1_health } from "../../gen/grpc/health/v1/health_pb.js";
import {
  ErrorResponseSchema,
  ExtensionNumberResponseSchema,
  file_grpc_reflection_v1_reflection,
  FileDescriptorResponseSchema,
  ListServiceResponseSchema,
  ServerReflection,
  ServerReflectionResponseSchema,
} from "../../gen/grpc/reflection/v1/reflection_pb.js";
import type { ServerReflectionRequest, ServerReflectionResponse } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflectionRequestSchema } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";

/** gRPC status codes used in `error_response` (grpc::StatusCode numbers, not connect's Code). */
const NOT_FOUND = 5;
const INVALID_ARGUMENT = 3;

/**
 * Returns the given files plus everything they import, transitively, each once, in dependency
 * order (imports before importers). Exported because a schema registry or a `FileDescriptorSet`
 * export needs the same closure.
 */
export function registryFiles(...files: DescFile[]): DescFile[] {
  const seen = new Map<string, DescFile>();
  const visit = (file: DescFile): void => {
    if (seen.has(file.proto.name)) return;
    seen.set(file.proto.name, file); // set before recursing: guards against import cycles
    for (const dep of file.dependencies) visit(dep);
    // Re-insert after the dependencies so iteration order is imports-first.
    seen.delete(file.proto.name);
    seen.set(file.proto.name, file);
  };
  for (const f of files) visit(f);
  return [...seen.values()];
}

/**
 * Builds the reflection service.
 *
 * @param files generated file descriptors of the exposed API (their imports are found on their own).
 * @param serviceNames fully-qualified names answered to `list_services`. List
 *   "grpc.health.v1.Health" / "grpc.reflection.v1.ServerReflection" /
 *   "grpc.reflection.v1alpha.ServerReflection" too when those are mounted (both reflection
 *   versions always are); their descriptors are added automatically. A name that no file defines throws at startup,
 *   because a listed-but-undescribed service makes grpcurl fail later in a confusing way.
 * @returns a `routes` function to pass to `connectNodeAdapter` (or to call inside one).
 */
export function createReflectionService(files: DescFile[], serviceNames: string[]): (router: ConnectRouter) => void {
  const roots = [...files, file_grpc_reflection_v1_reflection, v1alpha.file_grpc_reflection_v1alpha_reflection];
  if (serviceNames.includes("grpc.health.v1.Health")) roots.push(file_grpc_health_v1_health);
  const allFiles = registryFiles(...roots);

  const byFilename = new Map<string, DescFile>();
  const bySymbol = new Map<string, DescFile>();
  const messageNames = new Set<string>();
  // "extendee typeName" -> extension number -> file, for the two extension queries.
  const extensions = new Map<string, Map<number, DescFile>>();
  for (const file of allFiles) {
    byFilename.set(file.proto.name, file);
    for (const t of nestedTypes(file)) {
      bySymbol.set(t.typeName, file);
      switch (t.kind) {
        case "service":
          for (const m of t.methods) bySymbol.set(`${t.typeName}.${m.name}`, file);
          break;
        case "message":
          messageNames.add(t.typeName);
          for (const f of t.fields) bySymbol.set(`${t.typeName}.${f.name}`, file);
          for (const o of t.oneofs) bySymbol.set(`${t.typeName}.${o.name}`, file);
          break;
        case "enum": {
          // Protobuf scopes enum values as siblings of their enum, not as its children.
          const scope = t.parent?.typeName ?? file.proto.package;
          for (const v of t.values) bySymbol.set(scope ? `${scope}.${v.name}` : v.name, file);
          break;
        }
        case "extension": {
          const numbers = extensions.get(t.extendee.typeName) ?? new Map<number, DescFile>();
          numbers.set(t.number, file);
          extensions.set(t.extendee.typeName, numbers);
          break;
        }
      }
    }
  }
  for (const name of serviceNames) {
    if (bySymbol.get(name)?.services.some((s) => s.typeName === name) !== true) {
      throw new Error(`reflection: service "${name}" is not defined by any given file`);
    }
  }

  // Serialize each file once; answers reuse the bytes.
  const encoded = new Map<string, Uint8Array>();
  const encode = (file: DescFile): Uint8Array => {
    let bytes = encoded.get(file.proto.name);
    if (!bytes) {
      bytes = toBinary(FileDescriptorProtoSchema, file.proto);
      encoded.set(file.proto.name, bytes);
    }
    return bytes;
  };
  // The requested file first (as grpc-go does), then its transitive imports.
  const withDependencies = (file: DescFile): Uint8Array[] => [
    encode(file),
    ...registryFiles(file)
      .filter((f) => f !== file)
      .map(encode),
  ];

  type Answer = ServerReflectionResponse["messageResponse"];
  const error = (errorCode: number, errorMessage: string): Answer => ({
    case: "errorResponse",
    value: create(ErrorResponseSchema, { errorCode, errorMessage }),
  });
  const fileAnswer = (file: DescFile | undefined, what: string): Answer =>
    file
      ? {
          case: "fileDescriptorResponse",
          value: create(FileDescriptorResponseSchema, { fileDescriptorProto: withDependencies(file) }),
        }
      : error(NOT_FOUND, `${what} not found`);

  function answer(req: ServerReflectionRequest): Answer {
    const r = req.messageRequest;
    switch (r.case) {
      case "listServices":
        return {
          case: "listServicesResponse",
          value: create(ListServiceResponseSchema, { service: serviceNames.map((name) => ({ name })) }),
        };
      case "fileByFilename":
        return fileAnswer(byFilename.get(r.value), `file "${r.value}"`);
      case "fileContainingSymbol":
        // Tolerate the leading dot of descriptor-style names (".tether.v1.Device").
        return fileAnswer(bySymbol.get(r.value.replace(/^\./, "")), `symbol "${r.value}"`);
      case "fileContainingExtension": {
        const { containingType, extensionNumber } = r.value;
        return fileAnswer(extensions.get(containingType)?.get(extensionNumber), `extension ${extensionNumber} of "${containingType}"`);
      }
      case "allExtensionNumbersOfType":
        if (!messageNames.has(r.value)) return error(NOT_FOUND, `message type "${r.value}" not found`);
        return {
          case: "allExtensionNumbersResponse",
          value: create(ExtensionNumberResponseSchema, {
            baseTypeName: r.value,
            extensionNumber: [...(extensions.get(r.value)?.keys() ?? [])],
          }),
        };
      default:
        return error(INVALID_ARGUMENT, "message_request is not set");
    }
  }

  const respond = (req: ServerReflectionRequest): ServerReflectionResponse =>
    create(ServerReflectionResponseSchema, { validHost: req.host, originalRequest: req, messageResponse: answer(req) });

  return (router) => {
    router.service(ServerReflection, {
      async *serverReflectionInfo(requests: AsyncIterable<ServerReflectionRequest>) {
        // One answer per request, in order; the stream ends when the client half-closes.
        for await (const req of requests) yield respond(req);
      },
    });
    router.service(v1alpha.ServerReflection, {
      async *serverReflectionInfo(requests: AsyncIterable<v1alpha.ServerReflectionRequest>) {
        for await (const req of requests) {
          const asV1 = fromBinary(ServerReflectionRequestSchema, toBinary(v1alpha.ServerReflectionRequestSchema, req));
          yield fromBinary(v1alpha.ServerReflectionResponseSchema, toBinary(ServerReflectionResponseSchema, respond(asV1)));
        }
      },
    });
  };
}

/**
 * Client side: turns the `file_descriptor_proto` bytes of a reflection answer into a registry
 * (for schema-less calls or `describe` in the CLI, and for tests).
 *
 * Why not `createFileRegistry(first, resolve)`: in protobuf-es 2.13 that overload fails on
 * diamond imports (device.proto and a product proto both import timestamp.proto →
 * "Cannot find google/protobuf/timestamp.proto"). Sorting imports-first and passing a
 * FileDescriptorSet avoids it.
 */
export function fileRegistryFromDescriptors(fileDescriptorProtos: Uint8Array[]): FileRegistry {
  const byName = new Map<string, FileDescriptorProto>();
  for (const bytes of fileDescriptorProtos) {
    const proto = fromBinary(FileDescriptorProtoSchema, bytes);
    byName.set(proto.name, proto);
  }
  const sorted: FileDescriptorProto[] = [];
  const done = new Set<string>();
  const visit = (proto: FileDescriptorProto): void => {
    if (done.has(proto.name)) return;
    done.add(proto.name);
    for (const dep of proto.dependency) {
      const d = byName.get(dep);
      if (d) visit(d); // a missing import is reported by createFileRegistry below
    }
    sorted.push(proto);
  };
  for (const proto of byName.values()) visit(proto);
  return createFileRegistry(create(FileDescriptorSetSchema, { file: sorted }));
}
