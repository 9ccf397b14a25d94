import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { fromBinary, create } from "@bufbuild/protobuf";
import { type FileDescriptorProto, FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus } from "../../gen/grpc/health/v1/health_pb.js";
import { ServerReflection, type ServerReflectionResponse, ServerReflectionRequestSchema } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { metricValue } from "../helpers/replica.js";
import { connectClient, grpcJsClient, startTestStack, type TestStack } from "../helpers/stack.js";

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, "../..");
let s: TestStack;
beforeAll(async () => {
  s = await startTestStack();
});
afterAll(async () => {
  await s?.cleanup();
});

describe("health", () => {
  it("answers without a client certificate, so probes and load balancers can use it", async () => {
    const res = await connectClient(s, Health, "grpc", { ca: s.admin.ca }).check({ service: "" });
    expect(res.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    await expect(connectClient(s, Health, "connect").check({ service: "no.such.Service" })).rejects.toMatchObject({ code: Code.NotFound });
  });
});

describe("reflection", () => {
  it("lists the services and describes DeviceService to a grpc-js client over mTLS", async () => {
    const c = grpcJsClient(s, ServerReflection);
    try {
      const call = c.bidiStream("serverReflectionInfo");
      call.write(create(ServerReflectionRequestSchema, { messageRequest: { case: "listServices", value: "" } }));
      call.write(create(ServerReflectionRequestSchema, { messageRequest: { case: "fileContainingSymbol", value: "tether.v1.DeviceService" } }));
      call.end();
      const answers: ServerReflectionResponse[] = [];
      for await (const a of call) answers.push(a);
      const list = answers[0]!.messageResponse;
      expect(list.case).toBe("listServicesResponse");
      const names = list.case === "listServicesResponse" ? list.value.service.map((x) => x.name) : [];
      expect(names).toEqual(expect.arrayContaining(["tether.v1.DeviceService", "tether.v1.JobService", "tether.device.v1.DeviceGatewayService", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"]));
      expect(names).toHaveLength(14);
      const files = answers[1]!.messageResponse;
      const protos: FileDescriptorProto[] = files.case === "fileDescriptorResponse" ? files.value.fileDescriptorProto.map((b: Uint8Array) => fromBinary(FileDescriptorProtoSchema, b)) : [];
      expect(protos[0]!.service[0]!.method.map((m) => m.name)).toEqual(["CreateDevice", "GetDevice", "ListDevices", "UpdateDevice", "DeleteDevice", "WatchDevices"]);
    } finally {
      c.close();
    }
  });

  it("refuses reflection without a client certificate", async () => {
    const c = grpcJsClient(s, ServerReflection, { ca: s.admin.ca });
    try {
      const call = c.bidiStream("serverReflectionInfo");
      call.write(create(ServerReflectionRequestSchema, { messageRequest: { case: "listServices", value: "" } }));
      call.end();
      await expect((async () => { for await (const _ of call) void _; })()).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    } finally {
      c.close();
    }
  });

  it("lets buf curl call the API with no proto files (the README walkthrough)", async () => {
    const certs = path.join(s.dir, "certs");
    const buf = path.join(ROOT, "node_modules/.bin/buf");
    const tls = ["--cacert", `${certs}/ca.crt`, "--cert", `${certs}/admin.crt`, "--key", `${certs}/admin.key`];
    const created = await run(buf, ["curl", ...tls, "-d", '{"device_id":"curl-led","device":{"led":{"desired":{"power":true}}}}', `${s.baseUrl}/tether.v1.DeviceService/CreateDevice`]);
    expect(JSON.parse(created.stdout)).toMatchObject({ name: "devices/curl-led", led: { desired: { power: true } } });
    const listed = await run(buf, ["curl", ...tls, "--protocol", "grpc", "-d", '{"filter":"kind = \\"led\\""}', `${s.baseUrl}/tether.v1.DeviceService/ListDevices`]);
    expect(JSON.parse(listed.stdout).devices.map((d: { name: string }) => d.name)).toContain("devices/curl-led");
  });
});

describe("tether CLI", () => {
  it("creates, updates and lists devices with the admin certificate", async () => {
    const env = { ...process.env, TETHER_ADDRESS: s.baseUrl, TETHER_CERTS_DIR: path.join(s.dir, "certs") };
    const cli = (...args: string[]) => run(process.execPath, [path.join(ROOT, "bin/tether.js"), ...args], { env });
    await cli("devices", "create", "cli-coffee", "--kind", "coffee_machine", "--label", "room=office", "--power", "on");
    const upd = await cli("devices", "update", "cli-coffee", "--display-name", "Office machine", "--json");
    expect(JSON.parse(upd.stdout)).toMatchObject({ displayName: "Office machine", labels: { room: "office" }, coffeeMachine: { desired: { power: true } } });
    const list = await cli("devices", "list", "--kind", "coffee_machine");
    expect(list.stdout).toMatch(/devices\/cli-coffee\s+coffee_machine\s+Office machine/);
    const bad = await cli("devices", "create", "cli-bad", "--kind", "led", "--brightness", "300").then(() => undefined, (e: { stderr: string; code: number }) => e);
    expect(bad?.code).toBe(1);
    expect(bad?.stderr).toContain("device.led.desired.brightness: must be a percentage between 0 and 100");
  }, 120_000); // four CLI processes, each starting tsx: 30 s ran out on a saturated 2-core machine
});

describe("operations endpoint and request ids (embedded stack)", () => {
  it("serves /metrics, /healthz and /readyz, and per-dependency health on the API", async () => {
    await connectClient(s, DeviceService, "grpc").listDevices({});
    await expect(connectClient(s, DeviceService, "grpc").getDevice({ name: "devices/nope" })).rejects.toMatchObject({ code: Code.NotFound });
    const text = await (await fetch(`${s.opsUrl}/metrics`)).text();
    expect(metricValue(text, "tether_rpc_duration_seconds_count", { service: "tether.v1.DeviceService", method: "ListDevices", code: "ok" })).toBeGreaterThanOrEqual(1);
    expect(metricValue(text, "tether_rpc_duration_seconds_count", { service: "tether.v1.DeviceService", method: "GetDevice", code: "not_found" })).toBeGreaterThanOrEqual(1);
    expect(metricValue(text, "tether_dependency_up", { dependency: "tether.database" })).toBe(1);
    expect(metricValue(text, "tether_dependency_up", { dependency: "tether.broker" })).toBe(1);
    expect(metricValue(text, "tether_devices_online")).toBe(0);
    expect(text).toContain("# TYPE tether_rpc_duration_seconds histogram");
    expect((await fetch(`${s.opsUrl}/healthz`)).status).toBe(200);
    const ready = await fetch(`${s.opsUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ ready: true, dependencies: { "tether.database": true, "tether.broker": true } });
    expect((await fetch(`${s.opsUrl}/nope`)).status).toBe(404);
    // The public services answer under their own names too (from the services table), as the server does.
    for (const service of ["", "tether.database", "tether.broker", "tether.v1.DeviceService", "tether.device.v1.DeviceGatewayService"]) {
      expect((await connectClient(s, Health, "grpc").check({ service })).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    }
  });

  it("echoes a valid x-request-id, replaces an unusable one, and returns it on errors too", async () => {
    const header = async (id: string | undefined, name = "devices/nope") => {
      let got: string | null = null;
      const opts = { headers: id ? { "x-request-id": id } : {}, onHeader: (h: Headers) => (got = h.get("x-request-id")), onTrailer: (h: Headers) => (got ??= h.get("x-request-id")) };
      await connectClient(s, DeviceService, "connect").getDevice({ name }, opts).catch((err: unknown) => {
        got ??= (err as { metadata?: Headers }).metadata?.get("x-request-id") ?? null;
      });
      return got;
    };
    expect(await header("abc-123")).toBe("abc-123");
    expect(await header("bad id with spaces")).toMatch(/^[0-9a-f-]{36}$/);
    expect(await header(undefined)).toMatch(/^[0-9a-f-]{36}$/);
  });
});
