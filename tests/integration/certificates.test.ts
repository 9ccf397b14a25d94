import { AuditService } from "../../gen/tether/v1/audit_service_pb.js";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { create, fromBinary, toBinary, toJsonString } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DownlinkSchema, type Downlink } from "../../gen/tether/device/v1/downlink_pb.js";
import { UplinkSchema } from "../../gen/tether/device/v1/uplink_pb.js";
import { Certificate_Origin, Certificate_State, CertificateSchema, RevocationReason } from "../../gen/tether/v1/certificate_pb.js";
import { CertificateService } from "../../gen/tether/v1/certificate_service_pb.js";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { ProvisioningService } from "../../gen/tether/v1/provisioning_service_pb.js";
import { ensureDevPki } from "../../src/pki/dev-pki.js";
import { connectDevice } from "../../src/device/tether-device.js";
import { downlinkTopic, uplinkTopic } from "../../src/protocol/topics.js";
import { createCsr } from "../../src/pki/certificate-issuer.js";
import { mqttConnect, pem } from "../helpers/certificates.js";
import { eventually } from "../helpers/devices.js";
import { connectClient, type TestStack, startTestStack } from "../helpers/stack.js";

let s: TestStack;
beforeAll(async () => {
  s = await startTestStack();
});
afterAll(async () => {
  await s?.cleanup();
});

const certs = () => connectClient(s, CertificateService, "grpc");
const devices = () => connectClient(s, DeviceService, "grpc");
const createLed = (id: string) => devices().createDevice({ deviceId: id, device: { kind: { case: "led", value: {} } } });

async function codeOf(p: Promise<unknown>): Promise<{ code: Code; message: string }> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, "the call should have failed").toBeInstanceOf(ConnectError);
  return { code: (err as ConnectError).code, message: (err as ConnectError).rawMessage };
}

describe("issuing", () => {
  it("signs a device's CSR: the key stays on the device, the subject is the device", async () => {
    await createLed("csr-led");
    const { csrPem, keyPem } = await createCsr("csr-led");
    const res = await certs().createCertificate({ parent: "devices/csr-led", csr: csrPem });
    expect(res.privateKeyPem).toBe("");
    expect(toJsonString(CertificateSchema, res.certificate!)).not.toMatch(/PRIVATE KEY/);
    const c = res.certificate!;
    expect(c.name).toBe(`devices/csr-led/certificates/${c.serialNumber}`);
    expect(c.serialNumber).toMatch(/^[0-9a-f]+$/);
    expect(c.state).toBe(Certificate_State.ACTIVE);
    expect(c.origin).toBe(Certificate_Origin.CSR);
    const parsed = new x509.X509Certificate(c.certificatePem);
    expect(parsed.subjectName.getField("CN")).toEqual(["csr-led"]);
    expect(parsed.subjectName.getField("OU")).toEqual(["devices"]);
    expect(parsed.serialNumber.toLowerCase()).toBe(c.serialNumber);
    // The device's own key works with the certificate on the broker, for its own topics only.
    const { client, error } = await mqttConnect(s, "csr-led", c.certificatePem, keyPem);
    expect(error).toBeUndefined();
    await expect(client!.subscribeAsync(downlinkTopic("other-led"), { qos: 1 })).rejects.toMatchObject({ packet: { granted: [128] } });
    expect(await client!.subscribeAsync(downlinkTopic("csr-led"), { qos: 1 })).toEqual([{ topic: downlinkTopic("csr-led"), qos: 1 }]);
    const closed = new Promise<void>((r) => client!.once("close", () => r()));
    client!.publish(uplinkTopic("other-led"), "spoofed", { qos: 0 });
    await closed; // publishing as another device costs the connection
    client!.end(true);
  });

  it("generates a key pair on request, returns the key once, and never again", async () => {
    await createLed("gen-led");
    const res = await certs().createCertificate({ parent: "devices/gen-led", generateKey: true, validityDays: 30 });
    expect(res.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(res.certificate!.origin).toBe(Certificate_Origin.GENERATED);
    const got = await certs().getCertificate({ name: res.certificate!.name });
    const listed = await certs().listCertificates({ parent: "devices/gen-led" });
    for (const m of [got, ...listed.certificates]) expect(toJsonString(CertificateSchema, m)).not.toMatch(/PRIVATE KEY/);
    expect(listed.certificates.map((c) => c.serialNumber)).toEqual([res.certificate!.serialNumber]);
  });

  it.each<[string, () => Promise<{ csr?: string; generateKey?: boolean; parent?: string }>, Code, RegExp]>([
    [
      "a CSR whose subject claims another device",
      async () => ({ csr: (await createCsr("someone-else")).csrPem }),
      Code.PermissionDenied,
      /claims another identity/,
    ],
    [
      "a CSR asking for another OU",
      async () => ({ csr: (await createCsr("bad-led", { organizationalUnit: "services" })).csrPem }),
      Code.PermissionDenied,
      /OU/,
    ],
    [
      "a CSR whose signature does not verify",
      async () => ({ csr: tamper((await createCsr("bad-led")).csrPem) }),
      Code.InvalidArgument,
      /signature does not verify/,
    ],
    ["a weak RSA-1024 key", async () => ({ csr: (await createCsr("bad-led", { rsaBits: 1024 })).csrPem }), Code.InvalidArgument, /too weak/],
    [
      "something that is not a CSR",
      async () => ({ csr: "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----" }),
      Code.InvalidArgument,
      /not a PEM PKCS#10/,
    ],
    ["neither a CSR nor generate_key", async () => ({}), Code.InvalidArgument, /csr: is required/],
    ["an unknown device", async () => ({ parent: "devices/nobody", generateKey: true }), Code.NotFound, /devices\/nobody not found/],
  ])("refuses %s", async (_what, makeReq, code, message) => {
    await createLed("bad-led").catch(() => undefined);
    const err = await codeOf(certs().createCertificate({ parent: "devices/bad-led", ...(await makeReq()) }));
    expect(err.code).toBe(code);
    expect(err.message).toMatch(message);
    expect(err.message).not.toMatch(/at .*\.ts:\d+/); // never a stack trace
  });

  it("accepts RSA-2048 and a CSR without a CN", async () => {
    await createLed("rsa-led");
    for (const csr of [(await createCsr("rsa-led", { rsaBits: 2048 })).csrPem, (await createCsr(undefined)).csrPem]) {
      const res = await certs().createCertificate({ parent: "devices/rsa-led", csr });
      expect(new x509.X509Certificate(res.certificate!.certificatePem).subject).toBe("CN=rsa-led, OU=devices");
    }
  });
});

describe("who may", () => {
  it("refuses certificate and provisioning management to a user who is not an admin", async () => {
    await createLed("rights-led");
    const pki = await ensureDevPki(path.join(s.dir, "certs"));
    const alice = await pki.ca.issue({ commonName: "alice", usage: "client", organizationalUnit: "users" });
    const asAlice = pem(s, alice.certPem, alice.keyPem);
    const err = await codeOf(connectClient(s, CertificateService, "grpc", asAlice).createCertificate({ parent: "devices/rights-led", generateKey: true }));
    expect(err.code).toBe(Code.PermissionDenied);
    expect(err.message).toMatch(/needs an admin/);
    const prov = await codeOf(connectClient(s, ProvisioningService, "grpc", asAlice).listProvisioningTemplates({}));
    expect(prov.code).toBe(Code.PermissionDenied);
  });
});

describe("revocation", () => {
  it("cuts the live MQTT session within 5 s, refuses the next connection, lists the serial in the CRL", async () => {
    await createLed("rev-led");
    const { csrPem, keyPem } = await createCsr("rev-led");
    const { certificate } = await certs().createCertificate({ parent: "devices/rev-led", csr: csrPem });
    const { client } = await mqttConnect(s, "rev-led", certificate!.certificatePem, keyPem);
    expect(client?.connected).toBe(true);
    let closedAt = 0;
    client!.on("close", () => (closedAt ||= Date.now()));

    const started = Date.now();
    const revoked = await certs().revokeCertificate({ name: certificate!.name, reason: RevocationReason.KEY_COMPROMISE });
    expect(revoked.state).toBe(Certificate_State.REVOKED);
    expect(revoked.revocationReason).toBe(RevocationReason.KEY_COMPROMISE);
    await eventually(async () => closedAt > 0, 5_000, "the revoked session to be cut");
    expect(closedAt - started).toBeLessThan(5_000);
    client!.end(true);

    const again = await mqttConnect(s, "rev-led", certificate!.certificatePem, keyPem);
    expect(again.client).toBeUndefined();
    expect(again.error).toMatch(/Not authorized/);

    // The CRL: on disk, over HTTP and through the API, signed by the CA, listing the serial with its reason.
    const file = await readFile(path.join(s.dir, "certs", "crl.pem"), "utf8");
    const res = await fetchCrl();
    const api = await certs().getCertificateRevocationList({});
    const ca = new x509.X509Certificate(s.admin.ca.toString());
    for (const text of [file, res, api.crlPem]) {
      const crl = new x509.X509Crl(text);
      expect(await crl.verify({ publicKey: ca })).toBe(true);
      expect(crl.findRevoked(certificate!.serialNumber)?.reason).toBe(x509.X509CrlReason.keyCompromise);
    }
    // Revoking again changes nothing.
    const twice = await certs().revokeCertificate({ name: certificate!.name, reason: RevocationReason.SUPERSEDED });
    expect(twice.revocationReason).toBe(RevocationReason.KEY_COMPROMISE);
  });

  it("refuses a revoked certificate on the API port with UNAUTHENTICATED", async () => {
    await createLed("rev-api");
    const res = await certs().createCertificate({ parent: "devices/rev-api", generateKey: true });
    const asDevice = connectClient(s, DeviceService, "grpc", pem(s, res.certificate!.certificatePem, res.privateKeyPem));
    // Before: a device certificate is known but may not use the app API.
    expect((await codeOf(asDevice.listDevices({}))).code).toBe(Code.PermissionDenied);
    await certs().revokeCertificate({ name: res.certificate!.name, reason: RevocationReason.KEY_COMPROMISE });
    const after = await codeOf(connectClient(s, DeviceService, "connect", pem(s, res.certificate!.certificatePem, res.privateKeyPem)).listDevices({}));
    expect(after.code).toBe(Code.Unauthenticated);
    expect(after.message).toMatch(/revoked/);
  });

  it("survives a restart: revocations are loaded from the database", async () => {
    await createLed("rev-restart");
    const res = await certs().createCertificate({ parent: "devices/rev-restart", generateKey: true });
    await certs().revokeCertificate({ name: res.certificate!.name });
    await s.app.stop();
    await s.restart();
    const again = await mqttConnect(s, "rev-restart", res.certificate!.certificatePem, res.privateKeyPem);
    expect(again.error).toMatch(/Not authorized/);
  });
});

describe("renewal", () => {
  it("issues a new certificate while the old one still works: both connect during the overlap", async () => {
    await createLed("renew-led");
    const old = await certs().createCertificate({ parent: "devices/renew-led", generateKey: true });
    const { csrPem, keyPem } = await createCsr("renew-led");
    const renewed = await certs().renewCertificate({ name: old.certificate!.name, csr: csrPem });
    expect(renewed.privateKeyPem).toBe("");
    expect(renewed.certificate!.previousCertificate).toBe(old.certificate!.name);
    expect(renewed.certificate!.origin).toBe(Certificate_Origin.RENEWAL);
    for (const [cert, key] of [
      [old.certificate!.certificatePem, old.privateKeyPem],
      [renewed.certificate!.certificatePem, keyPem],
    ] as const) {
      const { client, error } = await mqttConnect(s, "renew-led", cert, key);
      expect(error).toBeUndefined();
      await client!.endAsync();
    }
    // A revoked certificate cannot be renewed.
    await certs().revokeCertificate({ name: old.certificate!.name, reason: RevocationReason.SUPERSEDED });
    expect((await codeOf(certs().renewCertificate({ name: old.certificate!.name, generateKey: true }))).code).toBe(Code.FailedPrecondition);
  });

  it("renews over MQTT: a CSR uplink gets the certificate downlink, and the same request id the same certificate", async () => {
    await createLed("mqtt-renew");
    const first = await certs().createCertificate({ parent: "devices/mqtt-renew", generateKey: true });
    const { client } = await mqttConnect(s, "mqtt-renew", first.certificate!.certificatePem, first.privateKeyPem);
    const received: Downlink[] = [];
    client!.on("message", (_t, payload) => received.push(fromBinary(DownlinkSchema, payload)));
    await client!.subscribeAsync(downlinkTopic("mqtt-renew"), { qos: 1 });
    const { csrPem, keyPem } = await createCsr("mqtt-renew");
    const send = (requestId: string, csr: string) =>
      client!.publishAsync(
        uplinkTopic("mqtt-renew"),
        Buffer.from(toBinary(UplinkSchema, create(UplinkSchema, { messageId: requestId, body: { case: "certificateRenewal", value: { requestId, csr } } }))),
        { qos: 1 },
      );
    const answer = (requestId: string) =>
      eventually(async () => received.find((d) => d.body.case === "certificate" && d.body.value.requestId === requestId), 10_000, `answer to ${requestId}`);

    await send("r1", csrPem);
    const a1 = await answer("r1");
    if (a1.body.case !== "certificate") throw new Error("unreachable");
    expect(a1.body.value.error).toBe("");
    const issued = a1.body.value;
    await send("r1", csrPem); // redelivery
    await eventually(async () => received.filter((d) => d.body.case === "certificate").length === 2);
    const copies = received.filter((d) => d.body.case === "certificate").map((d) => (d.body.value as { serialNumber: string }).serialNumber);
    expect(copies).toEqual([issued.serialNumber, issued.serialNumber]);
    // A CSR for another device is answered with the reason, and the session stays up.
    await send("r2", (await createCsr("other-device")).csrPem);
    const a2 = await answer("r2");
    expect(a2.body.value).toMatchObject({ serialNumber: "", error: expect.stringMatching(/PERMISSION_DENIED: .*claims another identity/) });
    expect(client!.connected).toBe(true);
    await client!.endAsync();

    const listed = await certs().listCertificates({ parent: "devices/mqtt-renew" });
    expect(listed.certificates.map((c) => c.serialNumber)).toEqual([first.certificate!.serialNumber, issued.serialNumber]);
    expect(listed.certificates[1]!.previousCertificate).toBe(first.certificate!.name);
    // Audited as the device, once (the redelivery changed nothing), naming the new certificate.
    const audited = await connectClient(s, AuditService, "grpc").listAuditEvents({
      method: "tether.certificates/RenewOverMqtt",
      principal: "devices/mqtt-renew",
    });
    expect(audited.auditEvents.map((e) => e.resource)).toEqual([listed.certificates[1]!.name]);
    const renewed = await mqttConnect(s, "mqtt-renew", issued.certificatePem, keyPem);
    expect(renewed.error).toBeUndefined();
    await renewed.client!.endAsync();
  });

  it("warns a device whose newest certificate expires soon, once", async () => {
    await createLed("expiring-led");
    const c = await certs().createCertificate({ parent: "devices/expiring-led", generateKey: true, validityDays: 2 });
    const { client } = await mqttConnect(s, "expiring-led", c.certificate!.certificatePem, c.privateKeyPem);
    const received: Downlink[] = [];
    client!.on("message", (_t, payload) => received.push(fromBinary(DownlinkSchema, payload)));
    await client!.subscribeAsync(downlinkTopic("expiring-led"), { qos: 1 });
    await eventually(
      async () => {
        await s.app.warnExpiringCertificates();
        return received.some((d) => d.body.case === "certificateExpiring");
      },
      10_000,
      "an expiry warning",
    );
    const warning = received.find((d) => d.body.case === "certificateExpiring")!;
    expect(warning.body.value).toMatchObject({ serialNumber: c.certificate!.serialNumber });
    expect(await s.app.warnExpiringCertificates()).toBe(0); // not again the same day
    await client!.endAsync();
  });
});

describe("device SDK", () => {
  it("renews its certificate over MQTT and hears expiry warnings", async () => {
    await createLed("sdk-led");
    const c = await certs().createCertificate({ parent: "devices/sdk-led", generateKey: true, validityDays: 3 });
    const device = await connectDevice({
      url: `mqtts://127.0.0.1:${s.app.mqttPort}`,
      deviceId: "sdk-led",
      cert: c.certificate!.certificatePem,
      key: c.privateKeyPem,
      ca: c.caCertificatePem,
      handler: () => ({}),
    });
    try {
      const warnings: string[] = [];
      device.on("certificateExpiring", (w) => warnings.push(w.serialNumber));
      await eventually(async () => (await s.app.warnExpiringCertificates(), warnings.length > 0), 10_000, "the warning");
      expect(warnings[0]).toBe(c.certificate!.serialNumber);

      const { csrPem } = await createCsr(undefined);
      const update = await device.renewCertificate(csrPem);
      expect(new x509.X509Certificate(update.certificatePem).subject).toBe("CN=sdk-led, OU=devices");
      await expect(device.renewCertificate((await createCsr(undefined, { rsaBits: 1024 })).csrPem)).rejects.toThrow(/refused: INVALID_ARGUMENT: .*too weak/);
    } finally {
      await device.close();
    }
  });
});

/** GET /crl.pem on the API port, without a client certificate (CRLs are public). */
async function fetchCrl(): Promise<string> {
  const https = await import("node:https");
  return new Promise((resolve, reject) => {
    https
      .get(`https://localhost:${s.app.apiPort}/crl.pem`, { ca: s.admin.ca }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (body += c));
        res.on("end", () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`status ${res.statusCode}: ${body}`))));
      })
      .on("error", reject);
  });
}

/** Flips a byte inside the CSR's public key, so its signature no longer verifies. */
function tamper(csrPem: string): string {
  const der = Buffer.from(csrPem.replace(/-----[^-]+-----|\s/g, ""), "base64");
  der[der.length - 80]! ^= 0x01;
  return `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString("base64")}\n-----END CERTIFICATE REQUEST-----\n`;
}
