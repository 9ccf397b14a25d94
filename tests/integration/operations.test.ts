import { execFile, spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { fromBinary, create } from "@bufbuild/protobuf";
import { type FileDescriptorProto, FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { Health, HealthCheckResponse_ServingStatus } from "../../gen/grpc/health/v1/health_pb.js";
import { ServerReflection, type ServerReflectionResponse, ServerReflectionRequestSchema } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { TaskService } from "../../gen/tether/v1/task_service_pb.js";
import { PRODUCTS } from "../../src/core/products/index.js";
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
      expect(names).toEqual(
        expect.arrayContaining([
          "tether.v1.DeviceService",
          "tether.v1.JobService",
          "tether.v1.AuditService",
          "tether.v1.WebhookService",
          "tether.v1.AlarmService",
          "tether.v1.FirmwareService",
          "tether.device.v1.DeviceGatewayService",
          "grpc.health.v1.Health",
          "grpc.reflection.v1.ServerReflection",
          "grpc.reflection.v1alpha.ServerReflection",
        ]),
      );
      expect(names).toHaveLength(18);
      const files = answers[1]!.messageResponse;
      const protos: FileDescriptorProto[] =
        files.case === "fileDescriptorResponse" ? files.value.fileDescriptorProto.map((b: Uint8Array) => fromBinary(FileDescriptorProtoSchema, b)) : [];
      expect(protos[0]!.service[0]!.method.map((m) => m.name)).toEqual([
        "CreateDevice",
        "GetDevice",
        "ListDevices",
        "UpdateDevice",
        "DeleteDevice",
        "WatchDevices",
        "ListConnectivityEvents",
        "CountDevices",
      ]);
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
      await expect(
        (async () => {
          for await (const _ of call) void _;
        })(),
      ).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    } finally {
      c.close();
    }
  });

  it("lets buf curl call the API with no proto files (the README walkthrough)", async () => {
    const certs = path.join(s.dir, "certs");
    const buf = path.join(ROOT, "node_modules/.bin/buf");
    const tls = ["--cacert", `${certs}/ca.crt`, "--cert", `${certs}/admin.crt`, "--key", `${certs}/admin.key`];
    const created = await run(buf, [
      "curl",
      ...tls,
      "-d",
      '{"device_id":"curl-led","device":{"led":{"desired":{"power":true}}}}',
      `${s.baseUrl}/tether.v1.DeviceService/CreateDevice`,
    ]);
    expect(JSON.parse(created.stdout)).toMatchObject({ name: "devices/curl-led", led: { desired: { power: true } } });
    const listed = await run(buf, [
      "curl",
      ...tls,
      "--protocol",
      "grpc",
      "-d",
      '{"filter":"kind = \\"led\\""}',
      `${s.baseUrl}/tether.v1.DeviceService/ListDevices`,
    ]);
    expect(JSON.parse(listed.stdout).devices.map((d: { name: string }) => d.name)).toContain("devices/curl-led");
  });

  it("answers the README's buf curl health checks, with the admin certificate and with none (schema from proto/)", async () => {
    const readme = await readFile(path.join(ROOT, "README.md"), "utf8");
    const block = /<!-- buf:health -->\n```sh\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block, "README block buf:health").toBeDefined();
    // As a reader runs it, from the repository's root, against this stack's port and PKI.
    const script = block!
      .replaceAll("npx buf ", `"${path.join(ROOT, "node_modules/.bin/buf")}" `)
      .replaceAll("https://localhost:8443", s.baseUrl)
      .replaceAll("certs/", `${s.certsDir}/`);
    const lines = script.split(/(?<!\\)\n/).filter((l) => l.trim() !== "");
    expect(lines).toHaveLength(2);
    expect(lines[1]).not.toContain("--cert ");
    for (const line of lines) {
      const out = await run("/bin/bash", ["-euo", "pipefail", "-c", line], { cwd: ROOT });
      expect(JSON.parse(out.stdout)).toEqual({ status: "SERVING" });
    }
  });
});

describe("tether CLI", () => {
  const cliEnv = () => ({ ...process.env, TETHER_ADDRESS: s.baseUrl, TETHER_CERTS_DIR: path.join(s.dir, "certs") });
  const cli = (...args: string[]) => run(process.execPath, [path.join(ROOT, "bin/tether.js"), ...args], { env: cliEnv() });

  it("creates, updates and lists devices with the admin certificate", async () => {
    await cli("devices", "create", "cli-coffee", "--kind", "coffee_machine", "--label", "room=office", "--power", "on");
    const upd = await cli("devices", "update", "cli-coffee", "--display-name", "Office machine", "--json");
    expect(JSON.parse(upd.stdout)).toMatchObject({ displayName: "Office machine", labels: { room: "office" }, coffeeMachine: { desired: { power: true } } });
    const list = await cli("devices", "list", "--kind", "coffee_machine");
    expect(list.stdout).toMatch(/devices\/cli-coffee\s+coffee_machine\s+Office machine/);
    const bad = await cli("devices", "create", "cli-bad", "--kind", "led", "--brightness", "300").then(
      () => undefined,
      (e: { stderr: string; code: number }) => e,
    );
    expect(bad?.code).toBe(1);
    expect(bad?.stderr).toContain("device.led.desired.brightness: must be a percentage between 0 and 100");
    // --timeout bounds --wait only: alone it is a mistake worth one line (the task is still created).
    const queued = await cli("tasks", "create", "cli-coffee", "power", "off", "--timeout", "5s");
    expect(queued.stderr).toBe("warning: --timeout only bounds --wait ack|done; without --wait the call returns at once\n");
    expect(queued.stdout).toMatch(/state\s+QUEUED/);
    const [gone, nothing] = await Promise.all([
      cli("devices", "delete", "cli-coffee", "--allow-missing"),
      cli("devices", "delete", "cli-never", "--allow-missing"),
    ]);
    expect(gone.stdout).toBe("deleted devices/cli-coffee\n");
    expect(nothing.stdout).toBe("devices/cli-never not found, nothing to delete\n");
  }, 180_000); // seven CLI processes, each starting tsx: 30 s ran out for four on a saturated 2-core machine

  it("adds and removes single labels and keeps the others; --label sets them all", async () => {
    await cli("devices", "create", "cli-labels", "--kind", PRODUCTS[0]!.kindName, "--label", "room=office", "--label", "floor=3");
    const changed = await cli("devices", "update", "cli-labels", "--add-label", "building=b7", "--remove-label", "floor", "--json");
    expect(JSON.parse(changed.stdout).labels).toEqual({ room: "office", building: "b7" });
    const exact = await cli("devices", "update", "cli-labels", "--label", "only=this", "--json");
    expect(JSON.parse(exact.stdout).labels).toEqual({ only: "this" });
    const both = await cli("devices", "update", "cli-labels", "--label", "a=b", "--add-label", "c=d").then(
      () => undefined,
      (e: { stderr: string; code: number }) => e,
    );
    expect(both?.code).toBe(1);
    expect(both?.stderr).toContain("use it or --add-label/--remove-label, not both");
  }, 120_000);

  it("Ctrl-C during tasks create --wait prints the task it created, which stays queued", async () => {
    const product = PRODUCTS[0]!;
    await cli("devices", "create", "cli-offline", "--kind", product.kindName);
    const [action, value] = product.words.example.split(" ");
    // The device never connects, so the wait lasts until it is interrupted.
    const child = spawn(
      process.execPath,
      [path.join(ROOT, "bin/tether.js"), "tasks", "create", "cli-offline", action!, ...(value ? [value] : []), "--wait", "done", "--timeout", "5m"],
      { env: cliEnv() },
    );
    let stderr = "";
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    const tasks = connectClient(s, TaskService, "grpc");
    await vi.waitFor(async () => expect((await tasks.listTasks({ parent: "devices/cli-offline" })).tasks).toHaveLength(1), { timeout: 90_000, interval: 100 });
    child.kill("SIGINT");
    expect(await exited).toBe(130);
    const listed = (await tasks.listTasks({ parent: "devices/cli-offline" })).tasks;
    expect(listed).toHaveLength(1); // found again by its request id, not created twice
    expect(stderr).toContain(`interrupted: ${listed[0]!.name} is QUEUED`);
    expect(stderr).toMatch(/tether tasks cancel cli-offline\//);
  }, 120_000);
});

describe("operations endpoint and request ids (embedded stack)", () => {
  it("serves /metrics, /healthz and /readyz, and per-dependency health on the API", async () => {
    await connectClient(s, DeviceService, "grpc").listDevices({});
    await expect(connectClient(s, DeviceService, "grpc").getDevice({ name: "devices/nope" })).rejects.toMatchObject({ code: Code.NotFound });
    const text = await (await fetch(`${s.opsUrl}/metrics`)).text();
    expect(
      metricValue(text, "tether_rpc_duration_seconds_count", { service: "tether.v1.DeviceService", method: "ListDevices", code: "ok" }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      metricValue(text, "tether_rpc_duration_seconds_count", { service: "tether.v1.DeviceService", method: "GetDevice", code: "not_found" }),
    ).toBeGreaterThanOrEqual(1);
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
      const opts = {
        headers: id ? { "x-request-id": id } : {},
        onHeader: (h: Headers) => (got = h.get("x-request-id")),
        onTrailer: (h: Headers) => (got ??= h.get("x-request-id")),
      };
      await connectClient(s, DeviceService, "connect")
        .getDevice({ name }, opts)
        .catch((err: unknown) => {
          got ??= (err as { metadata?: Headers }).metadata?.get("x-request-id") ?? null;
        });
      return got;
    };
    expect(await header("abc-123")).toBe("abc-123");
    expect(await header("bad id with spaces")).toMatch(/^[0-9a-f-]{36}$/);
    expect(await header(undefined)).toMatch(/^[0-9a-f-]{36}$/);
  });
});
