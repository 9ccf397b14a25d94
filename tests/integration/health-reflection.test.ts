/**
 * Health + reflection served by connect-node over h2c, exercised by an independent gRPC stack
 * (@grpc/grpc-js through our descriptor-derived client) and, when available, by `buf curl`.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { promisify } from "node:util";
import { createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus as S } from "../../gen/grpc/health/v1/health_pb.js";
import { ServerReflection } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import type { ServerReflectionRequest, ServerReflectionResponse } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ServerReflectionRequestSchema } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { file_tether_v1_device_service } from "../../gen/tether/v1/device_service_pb.js";
import { createGrpcJsClient } from "../../src/api/grpc-js-client.js";
import type { GrpcJsClient } from "../../src/api/grpc-js-client.js";
import { createHealthService } from "../../src/api/health.js";
import { createReflectionService, fileRegistryFromDescriptors } from "../../src/api/reflection.js";

const SERVICES = ["tether.v1.DeviceService", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"];
const BUF = "node_modules/.bin/buf";
const execFileAsync = promisify(execFile);

let server: http2.Http2Server;
const sessions = new Set<http2.ServerHttp2Session>();
let port: number;
let health: ReturnType<typeof createHealthService>;
let healthClient: GrpcJsClient<typeof Health>;
let reflectionClient: GrpcJsClient<typeof ServerReflection>;
let v1alphaClient: GrpcJsClient<typeof v1alpha.ServerReflection>;

beforeAll(async () => {
  health = createHealthService();
  const reflection = createReflectionService([file_tether_v1_device_service], SERVICES);
  server = http2.createServer(
    connectNodeAdapter({
      routes: (router) => {
        health.routes(router);
        reflection(router);
      },
    }),
  );
  // Clients keep HTTP/2 sessions alive; close() would wait for them forever.
  server.on("session", (s) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
  const creds = grpc.credentials.createInsecure();
  healthClient = createGrpcJsClient(Health, `127.0.0.1:${port}`, creds);
  reflectionClient = createGrpcJsClient(ServerReflection, `127.0.0.1:${port}`, creds);
  v1alphaClient = createGrpcJsClient(v1alpha.ServerReflection, `127.0.0.1:${port}`, creds);
});

afterAll(async () => {
  healthClient?.close();
  reflectionClient?.close();
  v1alphaClient?.close();
  health?.shutdown();
  for (const s of sessions) s.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** Sends requests on one reflection stream and collects one answer per request. */
async function reflect(...requests: MessageInitShape<typeof ServerReflectionRequestSchema>[]): Promise<ServerReflectionResponse[]> {
  const call = reflectionClient.bidiStream("serverReflectionInfo");
  for (const r of requests) call.write(r as ServerReflectionRequest);
  call.end();
  const out: ServerReflectionResponse[] = [];
  for await (const res of call) out.push(res);
  return out;
}

describe("grpc.health.v1.Health", () => {
  it("Check of the overall server is SERVING", async () => {
    const res = await healthClient.unary("check", { service: "" });
    expect(res.status).toBe(S.SERVING);
  });

  it("Check of an unknown service fails with NOT_FOUND", async () => {
    await expect(healthClient.unary("check", { service: "no.such.Service" })).rejects.toMatchObject({
      code: grpc.status.NOT_FOUND,
    });
  });

  it("Watch sees the current status, then every change", async () => {
    health.setStatus("tether.v1.DeviceService", "SERVING");
    const call = healthClient.serverStream("watch", { service: "tether.v1.DeviceService" });
    const it = call[Symbol.asyncIterator]();
    expect((await it.next()).value.status).toBe(S.SERVING);
    health.setStatus("tether.v1.DeviceService", "SERVING"); // no change: nothing sent
    health.setStatus("tether.v1.DeviceService", "NOT_SERVING");
    expect((await it.next()).value.status).toBe(S.NOT_SERVING);
    health.setStatus("tether.v1.DeviceService", "SERVING");
    expect((await it.next()).value.status).toBe(S.SERVING);
    call.cancel();
    await expect(it.next()).rejects.toMatchObject({ code: grpc.status.CANCELLED });
  });

  it("Watch of an unknown service says SERVICE_UNKNOWN and keeps watching", async () => {
    const call = healthClient.serverStream("watch", { service: "late.Service" });
    const it = call[Symbol.asyncIterator]();
    expect((await it.next()).value.status).toBe(S.SERVICE_UNKNOWN);
    health.setStatus("late.Service", "SERVING");
    expect((await it.next()).value.status).toBe(S.SERVING);
    call.cancel();
  });

  it("exposes the raw grpc-js client and typed method names", () => {
    expect(typeof healthClient.client["check"]).toBe("function");
    expect(typeof healthClient.client["Check"]).toBe("function"); // originalName alias
    expect(healthClient.definition["watch"]?.path).toBe("/grpc.health.v1.Health/Watch");
    // Compile-time only: the helpers accept just the methods of the matching kind.
    const typeChecks = (): void => {
      // @ts-expect-error Watch is server-streaming, not unary
      void healthClient.unary("watch", { service: "" });
      // @ts-expect-error Check is unary
      void healthClient.serverStream("check", { service: "" });
      // @ts-expect-error unknown field
      void healthClient.unary("check", { nope: 1 });
    };
    expect(typeChecks).toBeTypeOf("function");
  });

  it("List returns every status", async () => {
    const res = await healthClient.unary("list", {});
    expect(res.statuses[""]?.status).toBe(S.SERVING);
    expect(Object.keys(res.statuses)).toContain("tether.v1.DeviceService");
  });
});

describe("grpc.reflection.v1.ServerReflection", () => {
  it("lists the services", async () => {
    const [res] = await reflect({ host: "h", messageRequest: { case: "listServices", value: "" } });
    expect(res?.validHost).toBe("h");
    expect(res?.originalRequest?.messageRequest.case).toBe("listServices");
    expect(res?.messageResponse.case).toBe("listServicesResponse");
    const names = res?.messageResponse.case === "listServicesResponse" ? res.messageResponse.value.service.map((s) => s.name) : [];
    expect(names.sort()).toEqual([...SERVICES].sort());
  });

  it("answers file_containing_symbol with the file and all its imports", async () => {
    const responses = await reflect(
      { messageRequest: { case: "fileContainingSymbol", value: "tether.v1.DeviceService" } },
      { messageRequest: { case: "fileContainingSymbol", value: "tether.v1.DeviceService.CreateDevice" } },
      { messageRequest: { case: "fileByFilename", value: "tether/v1/device.proto" } },
    );
    expect(responses).toHaveLength(3);
    for (const res of responses) expect(res.messageResponse.case).toBe("fileDescriptorResponse");
    const first = responses[0]!.messageResponse;
    if (first.case !== "fileDescriptorResponse") throw new Error("unreachable");
    const protos = first.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b));
    expect(protos[0]?.name).toBe("tether/v1/device_service.proto"); // grpcurl takes the first as the answer
    expect(protos.map((p) => p.name)).toContain("google/protobuf/timestamp.proto");
    // Rebuilding a registry fails if any transitive import is missing.
    const registry = fileRegistryFromDescriptors(first.value.fileDescriptorProto);
    const svc = registry.getService("tether.v1.DeviceService");
    expect(svc?.methods.map((m) => m.name)).toContain("CreateDevice");
    expect(svc?.method["createDevice"]?.output.typeName).toBe("tether.v1.Device");
    expect(registry.getMessage("tether.v1.Device")).toBeDefined();
    expect(registry.getFile("google/protobuf/field_mask.proto")).toBeDefined();

    // Plain createFileRegistry(proto, resolve) works where imports do not form a diamond.
    const third = responses[2]!.messageResponse;
    if (third.case !== "fileDescriptorResponse") throw new Error("unreachable");
    const ledProtos = third.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b));
    const led = ledProtos.find((p) => p.name === "tether/v1/led.proto")!;
    const ledRegistry = createFileRegistry(led, (name) => ledProtos.find((p) => p.name === name));
    expect(ledRegistry.getFile("tether/v1/led.proto")).toBeDefined();
  });

  it("answers NOT_FOUND (5) for unknown symbols and extensions, empty extension lists", async () => {
    const [sym, ext, nums] = await reflect(
      { messageRequest: { case: "fileContainingSymbol", value: "tether.v1.Nope" } },
      { messageRequest: { case: "fileContainingExtension", value: { containingType: "tether.v1.Device", extensionNumber: 1000 } } },
      { messageRequest: { case: "allExtensionNumbersOfType", value: "tether.v1.Device" } },
    );
    expect(sym?.messageResponse).toMatchObject({ case: "errorResponse", value: { errorCode: 5 } });
    expect(ext?.messageResponse).toMatchObject({ case: "errorResponse", value: { errorCode: 5 } });
    expect(nums?.messageResponse).toMatchObject({
      case: "allExtensionNumbersResponse",
      value: { baseTypeName: "tether.v1.Device", extensionNumber: [] },
    });
  });

  it("rejects a service name that no file defines", () => {
    expect(() => createReflectionService([file_tether_v1_device_service], ["tether.v1.Missing"])).toThrow(/Missing/);
  });

  // Async execFile, never execFileSync: the server runs in this process and must keep answering.
  it.skipIf(!existsSync(BUF))("works with buf curl: list services and a schema-less call", async () => {
    const base = `http://127.0.0.1:${port}`;
    const flags = ["curl", "--protocol", "grpc", "--http2-prior-knowledge"];
    const list = await execFileAsync(BUF, [...flags, "--list-services", base]);
    expect(list.stdout.trim().split("\n").sort()).toEqual([...SERVICES].sort());
    const methods = await execFileAsync(BUF, [...flags, "--list-methods", base]);
    expect(methods.stdout).toContain("tether.v1.DeviceService/CreateDevice");
    const check = await execFileAsync(BUF, [...flags, "-d", '{"service":""}', `${base}/grpc.health.v1.Health/Check`]);
    expect(JSON.parse(check.stdout)).toEqual({ status: "SERVING" });
  });
});

// What older grpcurl, Postman and GUI clients call: the same answers under the v1alpha names.
describe("grpc.reflection.v1alpha.ServerReflection", () => {
  async function reflectV1alpha(...requests: MessageInitShape<typeof v1alpha.ServerReflectionRequestSchema>[]): Promise<v1alpha.ServerReflectionResponse[]> {
    const call = v1alphaClient.bidiStream("serverReflectionInfo");
    for (const r of requests) call.write(r as v1alpha.ServerReflectionRequest);
    call.end();
    const out: v1alpha.ServerReflectionResponse[] = [];
    for await (const res of call) out.push(res);
    return out;
  }

  it("lists the services and describes them, as v1 does", async () => {
    const [list, file, missing] = await reflectV1alpha(
      { host: "h", messageRequest: { case: "listServices", value: "" } },
      { messageRequest: { case: "fileContainingSymbol", value: "tether.v1.DeviceService" } },
      { messageRequest: { case: "fileContainingSymbol", value: "tether.v1.Nope" } },
    );
    expect(list?.$typeName).toBe("grpc.reflection.v1alpha.ServerReflectionResponse");
    expect(list?.validHost).toBe("h");
    expect(list?.originalRequest?.messageRequest.case).toBe("listServices");
    const names = list?.messageResponse.case === "listServicesResponse" ? list.messageResponse.value.service.map((s) => s.name) : [];
    expect(names.sort()).toEqual([...SERVICES].sort());
    if (file?.messageResponse.case !== "fileDescriptorResponse") throw new Error(`expected a file, got ${file?.messageResponse.case}`);
    const registry = fileRegistryFromDescriptors(file.messageResponse.value.fileDescriptorProto);
    expect(registry.getService("tether.v1.DeviceService")?.methods.map((m) => m.name)).toContain("CreateDevice");
    expect(missing?.messageResponse).toMatchObject({ case: "errorResponse", value: { errorCode: 5 } });
  });

  it.skipIf(!existsSync(BUF))("works with buf curl forced to v1alpha", async () => {
    const base = `http://127.0.0.1:${port}`;
    const list = await execFileAsync(BUF, [
      "curl",
      "--protocol",
      "grpc",
      "--http2-prior-knowledge",
      "--reflect-protocol",
      "grpc-v1alpha",
      "--list-services",
      base,
    ]);
    expect(list.stdout.trim().split("\n").sort()).toEqual([...SERVICES].sort());
  });
});

// Last: shutdown() flips the shared health service for good.
describe("HealthService.shutdown", () => {
  it("reports NOT_SERVING to open watches, ends them, and freezes statuses", async () => {
    const call = healthClient.serverStream("watch", { service: "" });
    const it = call[Symbol.asyncIterator]();
    expect((await it.next()).value.status).toBe(S.SERVING);
    const ended = new Promise<grpc.StatusObject>((resolve) => call.on("status", resolve));
    health.shutdown();
    expect((await it.next()).value.status).toBe(S.NOT_SERVING);
    expect((await it.next()).done).toBe(true);
    expect((await ended).code).toBe(grpc.status.OK);
    health.setStatus("", "SERVING");
    expect((await healthClient.unary("check", { service: "" })).status).toBe(S.NOT_SERVING);
  });
});
