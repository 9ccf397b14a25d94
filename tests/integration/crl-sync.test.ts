import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RevocationReason } from "../../gen/tether/v1/certificate_pb.js";
import { CertificateService } from "../../gen/tether/v1/certificate_service_pb.js";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { eventually } from "../helpers/devices.js";
import { connectClient, startTestStack, type TestStack } from "../helpers/stack.js";

/**
 * deploy/compose/crl-sync.mjs, the Compose service that hands Tether's CRL to Mosquitto (whose
 * entrypoint sends SIGHUP when the file changes), run against a real Tether: it fetches
 * GET /crl.pem over TLS checked against the CA and replaces its copy after a revocation.
 */
const SCRIPT = path.resolve(import.meta.dirname, "../../deploy/compose/crl-sync.mjs");
let s: TestStack;
let sync: ChildProcess | undefined;
beforeAll(async () => {
  s = await startTestStack();
});
afterAll(async () => {
  sync?.kill("SIGKILL");
  await s?.cleanup();
});

describe("deploy/compose/crl-sync.mjs", () => {
  it("starts from the seed CRL and follows Tether's CRL after a revocation", async () => {
    const devices = connectClient(s, DeviceService, "grpc");
    const certs = connectClient(s, CertificateService, "grpc");
    await devices.createDevice({ deviceId: "crl-led", device: { kind: { case: "led", value: {} } } });
    const { certificate } = await certs.createCertificate({ parent: "devices/crl-led", generateKey: true });
    const seed = path.join(s.certsDir, "crl.pem");
    const target = path.join(s.dir, "crl", "crl.pem");
    await mkdir(path.dirname(target));
    const before = await readFile(seed, "utf8");

    sync = spawn(process.execPath, [SCRIPT], {
      env: {
        PATH: process.env.PATH,
        NODE_EXTRA_CA_CERTS: path.join(s.certsDir, "ca.crt"),
        CRL_URL: `${s.baseUrl}/crl.pem`,
        CRL_FILE: target,
        CRL_SEED: seed,
        CRL_SYNC_INTERVAL_S: "0.2",
      },
      stdio: "ignore",
    });
    await eventually(async () => (await readFile(target, "utf8").catch(() => "")) === before, 10_000, "the seed CRL to be copied");

    await certs.revokeCertificate({ name: certificate!.name, reason: RevocationReason.KEY_COMPROMISE });
    await eventually(async () => (await readFile(seed, "utf8")) !== before, 10_000, "Tether to rewrite its CRL");
    const after = await readFile(seed, "utf8");
    await eventually(async () => (await readFile(target, "utf8")) === after, 15_000, "crl-sync to fetch the new CRL");
    expect(after).toMatch(/^-----BEGIN X509 CRL-----/);
  }, 60_000);
});
