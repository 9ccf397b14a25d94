import { execFile } from "node:child_process";
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { mqttConnect } from "../helpers/certificates.js";
import { connectClient, startTestStack, type TestStack } from "../helpers/stack.js";

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, "../..");
let s: TestStack;
beforeAll(async () => {
  s = await startTestStack();
});
afterAll(async () => {
  await s?.cleanup();
});

describe("tether certs and tether provisioning", () => {
  it("issues, lists and revokes certificates, and provisions a device with a claim certificate", async () => {
    const env = { ...process.env, TETHER_ADDRESS: s.baseUrl, TETHER_CERTS_DIR: path.join(s.dir, "certs") };
    const cli = (...args: string[]) => run(process.execPath, [path.join(ROOT, "bin/tether.js"), ...args], { env, cwd: s.dir });
    await connectClient(s, DeviceService, "grpc").createDevice({ deviceId: "cli-led", device: { kind: { case: "led", value: {} } } });

    const issued = await cli("certs", "issue", "cli-led", "--days", "90");
    expect(issued.stdout).toMatch(/devices\/cli-led\/certificates\/[0-9a-f]+/);
    // Device credentials go under the PKI folder (certs/devices/, 0700), never into the working tree.
    expect(issued.stdout).toMatch(/wrote certs\/devices\/cli-led\.crt, certs\/devices\/cli-led\.key/);
    const files = path.join(s.dir, "certs", "devices");
    expect((await stat(files)).mode & 0o777).toBe(0o700);
    expect((await stat(path.join(files, "cli-led.key"))).mode & 0o777).toBe(0o600);
    const cert = await readFile(path.join(files, "cli-led.crt"), "utf8");
    const key = await readFile(path.join(files, "cli-led.key"), "utf8");
    const serial = /certificates\/([0-9a-f]+)/.exec(issued.stdout)![1]!;
    const { client } = await mqttConnect(s, "cli-led", cert, key);
    expect(client?.connected).toBe(true);
    await client!.endAsync();

    expect((await cli("certs", "list", "cli-led")).stdout).toMatch(new RegExp(`${serial}\\s+ACTIVE\\s+GENERATED`));

    // Issuing again would replace the pair: refused before the server is asked, files untouched.
    const twice = await cli("certs", "issue", "cli-led").then(
      () => undefined,
      (e: { stderr: string; code: number }) => e,
    );
    expect(twice?.code).toBe(1);
    expect(twice?.stderr.trim()).toBe("error: will not overwrite the certificate: certs/devices/cli-led.crt: already exists (pass --force to replace it)");
    expect(await readFile(path.join(files, "cli-led.key"), "utf8")).toBe(key);
    expect((await cli("certs", "list", "cli-led")).stdout.trim().split("\n")).toHaveLength(2); // header + the one certificate
    const forced = await cli("certs", "renew", `cli-led/${serial}`, "--force");
    expect(forced.stdout).toMatch(/wrote certs\/devices\/cli-led\.crt, certs\/devices\/cli-led\.key/);
    expect(await readFile(path.join(files, "cli-led.key"), "utf8")).not.toBe(key);
    expect((await stat(path.join(files, "cli-led.key"))).mode & 0o777).toBe(0o600);
    const missing = await cli("certs", "renew", `cli-led/${serial}`, "--csr", "new.csr").then(
      () => undefined,
      (e: { stderr: string; code: number }) => e,
    );
    expect(missing?.code).toBe(1);
    expect(missing?.stderr.trim()).toBe("error: cannot read the CSR: new.csr: no such file or directory");
    await cli("certs", "revoke", `cli-led/${serial}`, "--reason", "key_compromise");
    expect((await cli("certs", "list", "cli-led")).stdout).toMatch(new RegExp(`${serial}\\s+REVOKED.*KEY_COMPROMISE`));
    expect((await cli("certs", "crl")).stdout).toMatch(/^-----BEGIN X509 CRL-----/);

    await cli("provisioning", "create", "cli-batch", "--kind", "coffee", "--prefix", "cm-", "--serial", "X-1", "--label", "site=lab");
    await cli("provisioning", "claim-cert", "cli-batch", "--out", "claim"); // an explicit prefix is used as given
    expect((await stat(path.join(s.dir, "claim.key"))).mode & 0o777).toBe(0o600);
    const provisioned = await cli("provisioning", "provision", "--claim", "claim", "--serial", "X-1");
    expect(provisioned.stdout).toMatch(/provisioned devices\/cm-x-1/);
    const again = await cli("provisioning", "provision", "--claim", "claim", "--serial", "X-1").then(
      () => undefined,
      (e: { stderr: string }) => e,
    );
    expect(again?.stderr).toMatch(/ALREADY_EXISTS/);
    expect((await cli("provisioning", "records", "cli-batch")).stdout).toMatch(/X-1\s+devices\/cm-x-1/);
    const device = await mqttConnect(
      s,
      "cm-x-1",
      await readFile(path.join(files, "cm-x-1.crt"), "utf8"),
      await readFile(path.join(files, "cm-x-1.key"), "utf8"),
    );
    expect(device.error).toBeUndefined();
    await device.client!.endAsync();
  }, 300_000); // fifteen CLI processes, each starting tsx (~2 s apiece on an idle machine)
});
