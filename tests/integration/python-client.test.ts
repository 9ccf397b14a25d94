import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { findPythonToolchain } from "../helpers/python-toolchain.js";
import { connectClient, startTestStack, type TestStack } from "../helpers/stack.js";

/**
 * The README's Python recipe, as a client author follows it: compile proto/ with Debian's protoc and
 * grpc_python_plugin (the README's block, verbatim), then call GetDevice over mutual TLS with
 * grpcio (tests/python/get_device.py).
 */
const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, "../..");
const CLIENT = path.join(ROOT, "tests/python/get_device.py");

const toolchain = await findPythonToolchain();
const unavailable = "missing" in toolchain ? toolchain.missing : undefined;
if (unavailable) console.warn(`python-client test skipped: ${unavailable}`);

describe.skipIf(unavailable !== undefined)("a Python grpcio client built by the README's recipe", () => {
  const python = "python" in toolchain ? toolchain.python : "python3";
  let s: TestStack;
  let out: string;
  beforeAll(async () => {
    s = await startTestStack();
    out = await mkdtemp(path.join(tmpdir(), "tether-py-"));
  });
  afterAll(async () => {
    await s?.cleanup();
    if (out) await rm(out, { recursive: true, force: true });
  });

  /** get_device.py against this stack, with the admin certificate unless told otherwise. */
  const getDevice = (name: string, cert = "admin") =>
    run(
      python,
      [
        CLIENT,
        "--gen",
        out,
        "--address",
        `localhost:${s.app.apiPort}`,
        "--ca",
        path.join(s.certsDir, "ca.crt"),
        "--cert",
        path.join(s.certsDir, `${cert}.crt`),
        "--key",
        path.join(s.certsDir, `${cert}.key`),
        name,
      ],
      { timeout: 60_000 },
    ).then(
      (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
    );

  it("compiles proto/tether only, so grpcio's own grpc package stays importable", async () => {
    const readme = await readFile(path.join(ROOT, "README.md"), "utf8");
    const block = /<!-- python:compile -->\n```sh\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block, "README block python:compile").toBeDefined();
    expect(block).toContain("proto/tether");
    // Run from the repository's root, as the README says, writing to a temp folder instead of gen-py.
    await run("/bin/bash", ["-euo", "pipefail", "-c", block!.replaceAll("gen-py", out)], { cwd: ROOT, timeout: 120_000 });
    expect(existsSync(path.join(out, "tether/v1/device_service_pb2_grpc.py"))).toBe(true);
    expect(existsSync(path.join(out, "tether/device/v1/gateway_service_pb2_grpc.py"))).toBe(true);
    expect(existsSync(path.join(out, "grpc")), "nothing generated where grpcio lives").toBe(false);
    // With the generated folder first on the path, `grpc` is still grpcio.
    const probe = await run(python, ["-c", "import grpc, sys; print(grpc.__file__); print(hasattr(grpc, 'secure_channel'))"], {
      env: { ...process.env, PYTHONPATH: out },
    });
    expect(probe.stdout.split("\n").slice(0, 2)).toEqual([expect.not.stringContaining(out), "True"]);
  }, 150_000);

  it("calls GetDevice over mutual TLS and prints the device (proto3 optional fields included)", async () => {
    await connectClient(s, DeviceService, "connect").createDevice({
      deviceId: "py-led",
      device: { displayName: "Python's LED", labels: { room: "lab" }, kind: { case: "led", value: { desired: { power: true, brightness: 0 } } } },
    });
    const res = await getDevice("devices/py-led");
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    const device = JSON.parse(res.stdout);
    // brightness 0 is set (proto3 optional): Python sees it as present.
    expect(device).toMatchObject({
      name: "devices/py-led",
      displayName: "Python's LED",
      labels: { room: "lab" },
      led: { desired: { power: true, brightness: 0 } },
    });
    expect(device.uid).toMatch(/^[0-9a-f-]{36}$/);
  }, 60_000);

  it("exits non-zero with the gRPC status when the call fails", async () => {
    const missing = await getDevice("devices/py-nope");
    expect(missing.code).toBe(1);
    expect(missing.stdout).toBe("");
    expect(missing.stderr).toMatch(/^get_device\.py: NOT_FOUND: /);
  }, 60_000);
});
