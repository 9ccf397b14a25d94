import { AuditService } from "../../gen/tether/v1/audit_service_pb.js";
import { Code, ConnectError } from "@connectrpc/connect";
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Certificate_Origin } from "../../gen/tether/v1/certificate_pb.js";
import { CertificateService } from "../../gen/tether/v1/certificate_service_pb.js";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { ProvisioningService } from "../../gen/tether/v1/provisioning_service_pb.js";
import { Task_State } from "../../gen/tether/v1/task_pb.js";
import { CreateTaskRequest_WaitFor as WaitFor, TaskService } from "../../gen/tether/v1/task_service_pb.js";
import { startLedSim } from "../helpers/devices.js";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { ProvisioningRequestSchema, type ProvisioningResponse, ProvisioningResponseSchema } from "../../gen/tether/device/v1/provisioning_pb.js";
import { downlinkTopic, provisioningRequestTopic, provisioningResponseTopic, uplinkTopic } from "../../src/protocol/topics.js";
import { eventually } from "../helpers/devices.js";
import { createCsr } from "../../src/pki/certificate-issuer.js";
import { mqttConnect, pem } from "../helpers/certificates.js";
import { connectClient, type Pem, type TestStack, startTestStack } from "../helpers/stack.js";

let s: TestStack;
let claim: Pem;
const provisioning = (as?: Pem) => connectClient(s, ProvisioningService, "grpc", as ?? s.admin);

beforeAll(async () => {
  s = await startTestStack();
  await provisioning().createProvisioningTemplate({
    provisioningTemplateId: "factory-leds",
    provisioningTemplate: {
      deviceKind: "led",
      deviceIdPrefix: "led-",
      labels: { batch: "b1" },
      allowedSerialNumbers: ["SN-0001", "SN-0002"],
      serialNumberPattern: "PAT-[0-9]{3}",
    },
  });
  const c = await provisioning().createClaimCertificate({ parent: "provisioningTemplates/factory-leds" });
  claim = pem(s, c.certificatePem, c.privateKeyPem);
  expect(new x509.X509Certificate(c.certificatePem).subject).toBe("CN=factory-leds, OU=claims");
});
afterAll(async () => {
  await s?.cleanup();
});

async function codeOf(p: Promise<unknown>): Promise<{ code: Code; message: string }> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, "the call should have failed").toBeInstanceOf(ConnectError);
  return { code: (err as ConnectError).code, message: (err as ConnectError).rawMessage };
}

describe("zero-touch provisioning", () => {
  it("exchanges a claim certificate, a CSR and an allowed serial for a registry entry and a device certificate", async () => {
    const { csrPem, keyPem } = await createCsr("led-sn-0001");
    const res = await provisioning(claim).provisionDevice({ serialNumber: "SN-0001", csr: csrPem });
    expect(res.device!.name).toBe("devices/led-sn-0001");
    expect(res.device!.labels).toMatchObject({ batch: "b1", "serial-number": "sn-0001" });
    expect(res.device!.kind.case).toBe("led");
    expect(res.certificate!.origin).toBe(Certificate_Origin.PROVISIONING);
    expect(res.certificate!.provisioningTemplate).toBe("provisioningTemplates/factory-leds");
    expect(new x509.X509Certificate(res.certificate!.certificatePem).subject).toBe("CN=led-sn-0001, OU=devices");

    // The registry has it, and the device works with its own certificate.
    const listed = await connectClient(s, CertificateService, "grpc").listCertificates({ parent: "devices/led-sn-0001" });
    expect(listed.certificates.map((c) => c.serialNumber)).toEqual([res.certificate!.serialNumber]);
    const device = await startLedSim({
      url: `mqtts://127.0.0.1:${s.app.mqttPort}`,
      deviceId: "led-sn-0001",
      cert: res.certificate!.certificatePem,
      key: keyPem,
      ca: res.caCertificatePem,
    });
    const task = await connectClient(s, TaskService, "grpc").createTask({
      parent: "devices/led-sn-0001",
      task: { command: { kind: { case: "led", value: { action: { case: "setPower", value: true } } } } },
      waitFor: WaitFor.COMPLETED,
      waitTimeout: { seconds: 20n },
    });
    expect(task.state).toBe(Task_State.SUCCEEDED);
    await device.device.close();

    const records = await provisioning().listProvisioningRecords({ parent: "provisioningTemplates/factory-leds" });
    expect(records.provisioningRecords.map((r) => [r.serialNumber, r.device])).toEqual([["SN-0001", "devices/led-sn-0001"]]);
  });

  it("gives each allowed serial one certificate only; a retry with the same key gets that same one", async () => {
    const { csrPem } = await createCsr(undefined);
    const first = await provisioning(claim).provisionDevice({ serialNumber: "PAT-042", csr: csrPem });
    expect(first.device!.name).toBe("devices/led-pat-042");
    // The answer was lost and the device asks again with the same key: the same certificate, not a new one.
    const retry = await provisioning(claim).provisionDevice({ serialNumber: "PAT-042", csr: csrPem });
    expect(retry.certificate!.serialNumber).toBe(first.certificate!.serialNumber);
    // Anyone else (another key) gets nothing.
    const again = await codeOf(provisioning(claim).provisionDevice({ serialNumber: "PAT-042", csr: (await createCsr(undefined)).csrPem }));
    expect(again.code).toBe(Code.AlreadyExists);
    const listed = await connectClient(s, CertificateService, "grpc").listCertificates({ parent: "devices/led-pat-042" });
    expect(listed.certificates).toHaveLength(1);
  });

  it("gives a serial one certificate even when two requests race", async () => {
    const csrs = await Promise.all([createCsr(undefined), createCsr(undefined), createCsr(undefined)]);
    const results = await Promise.allSettled(csrs.map((c) => provisioning(claim).provisionDevice({ serialNumber: "PAT-777", csr: c.csrPem })));
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    for (const r of results) if (r.status === "rejected") expect((r.reason as ConnectError).code).toBe(Code.AlreadyExists);
    const listed = await connectClient(s, CertificateService, "grpc").listCertificates({ parent: "devices/led-pat-777" });
    expect(listed.certificates).toHaveLength(1);
  });

  it.each<[string, () => Promise<{ serialNumber: string; csr: string }>, Code, RegExp]>([
    [
      "a serial the template does not allow",
      async () => ({ serialNumber: "SN-9999", csr: (await createCsr(undefined)).csrPem }),
      Code.PermissionDenied,
      /not allowed/,
    ],
    [
      "a CSR naming another device",
      async () => ({ serialNumber: "SN-0002", csr: (await createCsr("led-sn-0001")).csrPem }),
      Code.PermissionDenied,
      /claims another identity/,
    ],
    ["a weak key", async () => ({ serialNumber: "SN-0002", csr: (await createCsr(undefined, { rsaBits: 1024 })).csrPem }), Code.InvalidArgument, /too weak/],
    ["no CSR", async () => ({ serialNumber: "SN-0002", csr: "" }), Code.InvalidArgument, /csr/],
  ])("refuses %s", async (_what, makeReq, code, message) => {
    const err = await codeOf(provisioning(claim).provisionDevice(await makeReq()));
    expect(err.code).toBe(code);
    expect(err.message).toMatch(message);
  });

  it("lets a claim certificate do nothing else", async () => {
    // No other RPC, not even on the same service.
    for (const call of [
      () => connectClient(s, DeviceService, "grpc", claim).listDevices({}),
      () => connectClient(s, CertificateService, "grpc", claim).createCertificate({ parent: "devices/led-sn-0001", generateKey: true }),
      () => provisioning(claim).createClaimCertificate({ parent: "provisioningTemplates/factory-leds" }),
      () => provisioning(claim).addAllowedSerialNumbers({ name: "provisioningTemplates/factory-leds", serialNumbers: ["SN-EVIL"] }),
    ]) {
      expect((await codeOf(call())).code).toBe(Code.PermissionDenied);
    }
    // On the broker: never as a device's client id, and never a device topic.
    const c = await provisioning().createClaimCertificate({ parent: "provisioningTemplates/factory-leds" });
    for (const clientId of ["factory-leds", "led-sn-0001"]) {
      const r = await mqttConnect(s, clientId, c.certificatePem, c.privateKeyPem);
      expect(r.client).toBeUndefined();
      expect(r.error).toMatch(/Not authorized/);
    }
    const { client } = await mqttConnect(s, "claim:SN-0002", c.certificatePem, c.privateKeyPem);
    await expect(client!.subscribeAsync(downlinkTopic("led-sn-0001"), { qos: 1 })).rejects.toMatchObject({ packet: { granted: [128] } });
    const closed = new Promise<void>((r) => client!.once("close", () => r()));
    client!.publish(uplinkTopic("led-sn-0001"), "spoofed", { qos: 0 });
    await closed;
    client!.end(true);
    // And a user certificate cannot call ProvisionDevice (the template comes from the claim's CN).
    expect((await codeOf(provisioning().provisionDevice({ serialNumber: "SN-0002", csr: (await createCsr(undefined)).csrPem }))).code).toBe(
      Code.PermissionDenied,
    );
  });

  it("provisions over MQTT: request on the claim's topic, certificate on its response topic", async () => {
    const c = await provisioning().createClaimCertificate({ parent: "provisioningTemplates/factory-leds" });
    const { client } = await mqttConnect(s, "claim:PAT-500", c.certificatePem, c.privateKeyPem);
    const answers: ProvisioningResponse[] = [];
    client!.on("message", (_t, payload) => answers.push(fromBinary(ProvisioningResponseSchema, payload)));
    await client!.subscribeAsync(provisioningResponseTopic("factory-leds", "PAT-500"), { qos: 1 });
    const { csrPem, keyPem } = await createCsr(undefined);
    const ask = (requestId: string, serialNumber: string, csr: string) =>
      client!.publishAsync(
        provisioningRequestTopic("factory-leds", "PAT-500"),
        Buffer.from(toBinary(ProvisioningRequestSchema, create(ProvisioningRequestSchema, { requestId, serialNumber, csr }))),
        { qos: 1 },
      );
    const answer = (id: string) => eventually(async () => answers.find((a) => a.requestId === id), 10_000, `answer ${id}`);

    await ask("a", "PAT-500", csrPem);
    const ok = await answer("a");
    expect(ok).toMatchObject({ error: "", deviceId: "led-pat-500" });
    await ask("b", "NOPE-1", (await createCsr(undefined)).csrPem);
    expect((await answer("b")).error).toMatch(/^PERMISSION_DENIED: serial number NOPE-1 is not allowed/);
    await ask("c", "PAT-500", csrPem); // the same device again: the same certificate
    expect((await answer("c")).certificatePem).toBe(ok.certificatePem);
    await client!.endAsync();
    // Audited as the claim's template, once: the repeat changed nothing.
    const audited = await connectClient(s, AuditService, "grpc").listAuditEvents({ method: "tether.certificates/ProvisionOverMqtt" });
    expect(audited.auditEvents.map((e) => [e.principal, e.resource])).toEqual([["provisioningTemplates/factory-leds", "devices/led-pat-500"]]);

    const device = await mqttConnect(s, ok.deviceId, ok.certificatePem, keyPem);
    expect(device.error).toBeUndefined();
    await device.client!.endAsync();
  });

  it("revokes a template's claim certificates when the template is deleted", async () => {
    await provisioning().createProvisioningTemplate({
      provisioningTemplateId: "short-lived",
      provisioningTemplate: { deviceKind: "coffee_machine", deviceIdPrefix: "cm-", allowedSerialNumbers: ["A1"] },
    });
    const c = await provisioning().createClaimCertificate({ parent: "provisioningTemplates/short-lived" });
    await provisioning().deleteProvisioningTemplate({ name: "provisioningTemplates/short-lived" });
    const err = await codeOf(
      provisioning(pem(s, c.certificatePem, c.privateKeyPem)).provisionDevice({ serialNumber: "A1", csr: (await createCsr(undefined)).csrPem }),
    );
    expect(err.code).toBe(Code.Unauthenticated);
    expect(err.message).toMatch(/revoked/);
    const crl = new x509.X509Crl((await connectClient(s, CertificateService, "grpc").getCertificateRevocationList({})).crlPem);
    expect(crl.findRevoked(c.serialNumber)).not.toBeNull();
  });

  it("validates templates", async () => {
    const err = await codeOf(
      provisioning().createProvisioningTemplate({
        provisioningTemplateId: "Bad Id",
        provisioningTemplate: { deviceKind: "toaster", deviceIdPrefix: "", serialNumberPattern: "(" },
      }),
    );
    expect(err.code).toBe(Code.InvalidArgument);
    for (const f of ["provisioning_template_id", "device_kind", "device_id_prefix", "serial_number_pattern"]) expect(err.message).toContain(f);
  });
});
