import { readFile } from "node:fs/promises";
import path from "node:path";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { DeviceGatewayService } from "../../gen/tether/device/v1/gateway_service_pb.js";
import { Certificate_State, RevocationReason } from "../../gen/tether/v1/certificate_pb.js";
import { CertificateService } from "../../gen/tether/v1/certificate_service_pb.js";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { ProvisioningService } from "../../gen/tether/v1/provisioning_service_pb.js";
import { TaskService } from "../../gen/tether/v1/task_service_pb.js";
import { downlinkTopic } from "../../src/protocol/topics.js";
import { createCsr } from "../../src/pki/certificate-issuer.js";
import { ensureDevPki, issueDeviceCertificate } from "../../src/pki/dev-pki.js";
import { AuthService } from "../../gen/tether/v1/auth_service_pb.js";
import { UserService } from "../../gen/tether/v1/user_service_pb.js";
import { anonymousClient, bearerClient, userToken } from "../helpers/auth.js";
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
const tasks = () => connectClient(s, TaskService, "grpc");
const provisioning = () => connectClient(s, ProvisioningService, "grpc");
const led = (id: string) => ({ deviceId: id, device: { kind: { case: "led" as const, value: {} } } });
const power = { command: { kind: { case: "led" as const, value: { action: { case: "setPower" as const, value: true } } } } };

async function failure(p: Promise<unknown>): Promise<ConnectError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, "the call should have failed").toBeInstanceOf(ConnectError);
  return err as ConnectError;
}

/** The code and the BadRequest field paths of a failed call. */
async function refusal(p: Promise<unknown>): Promise<{ code: Code; fields: string[]; message: string }> {
  const err = await failure(p);
  return { code: err.code, fields: err.findDetails(BadRequestSchema).flatMap((b) => b.fieldViolations.map((v) => v.field)), message: err.rawMessage };
}

describe("a deleted device's keys", () => {
  it("are revoked by DeleteDevice, cut at once, and give a re-created device nothing over MQTT or HTTP", async () => {
    await devices().createDevice(led("reborn-led"));
    // Two old keys: one Tether issued, one the CA signed outside Tether (offline, never in the table).
    const issued = await certs().createCertificate({ parent: "devices/reborn-led", generateKey: true });
    const offline = await issueDeviceCertificate((await ensureDevPki(s.certsDir)).ca, "reborn-led");
    const old = { cert: issued.certificate!.certificatePem, key: issued.privateKeyPem };

    // A live MQTT session and a parked HTTP long poll, both on the old identity.
    const session = await mqttConnect(s, "reborn-led", old.cert, old.key);
    expect(session.error).toBeUndefined();
    const sessionClosed = new Promise<void>((r) => session.client!.once("close", () => r()));
    const oldGateway = connectClient(s, DeviceGatewayService, "connect", pem(s, offline.certPem, offline.keyPem));
    const first = await oldGateway.pollDownlink({ listenDuration: { nanos: 1 } });
    expect(first.downlinks.map((d) => d.body.case)).toEqual([]);
    const parked = oldGateway.pollDownlink({ listenDuration: { seconds: 55n } }).then(
      () => "answered",
      () => "ended",
    );
    await eventually(
      async () => (await devices().getDevice({ name: "devices/reborn-led" })).connectivity?.listenUntilTime !== undefined,
      30_000,
      "the poll to park",
    );
    // Read before the second poll starts: read after, it could already be the second poll's.
    const listening = timestampDate((await devices().getDevice({ name: "devices/reborn-led" })).connectivity!.listenUntilTime!).getTime();
    // A second parked poll on the key Tether issued: its connection is cut with the revocation.
    const issuedGateway = connectClient(s, DeviceGatewayService, "connect", pem(s, old.cert, old.key));
    const parkedIssued = issuedGateway.pollDownlink({ listenDuration: { seconds: 55n } }).then(
      () => "answered",
      () => "ended",
    );
    const untilNow = async () => {
      const t = (await devices().getDevice({ name: "devices/reborn-led" })).connectivity?.listenUntilTime;
      return t ? timestampDate(t).getTime() : 0;
    };
    await eventually(async () => (await untilNow()) > listening, 30_000, "the second poll to park");

    await devices().deleteDevice({ name: "devices/reborn-led" });
    await sessionClosed; // the MQTT session is cut by the deletion
    // Neither long poll outlives the device (without this they would wait their 55 s).
    expect(await parked).toMatch(/answered|ended/);
    expect(await parkedIssued).toMatch(/answered|ended/);
    const crl = await certs().getCertificateRevocationList({});
    const listed = new x509.X509Crl(crl.crlPem);
    const entry = listed.findRevoked(issued.certificate!.serialNumber);
    expect(entry, "the deleted device's certificate is in the CRL").not.toBeNull();
    expect(entry!.reason).toBe(RevocationReason.CESSATION_OF_OPERATION);

    // Someone re-creates the id and queues a task for the new device.
    const reborn = await devices().createDevice(led("reborn-led"));
    await tasks().createTask({ parent: "devices/reborn-led", task: power });

    // MQTT: neither old key connects, so neither can receive the task or publish telemetry.
    expect((await mqttConnect(s, "reborn-led", old.cert, old.key)).error).toMatch(/Not authorized/);
    expect((await mqttConnect(s, "reborn-led", offline.certPem, offline.keyPem)).error).toMatch(/Not authorized/);
    // HTTP: both are refused on the next request: no task, no telemetry.
    for (const key of [old, { cert: offline.certPem, key: offline.keyPem }]) {
      const gw = connectClient(s, DeviceGatewayService, "connect", pem(s, key.cert, key.key));
      const poll = await failure(gw.pollDownlink({}));
      expect(poll.code).toBe(Code.Unauthenticated);
      const publish = await failure(
        gw.publishUplink({ uplinks: [{ body: { case: "telemetry", value: { samples: [{ metric: "temperature_celsius", value: 99 }] } } }] }),
      );
      expect(publish.code).toBe(Code.Unauthenticated);
    }

    // The new device's own certificate works at once (its notBefore is backdated before the deletion).
    const fresh = await certs().createCertificate({ parent: "devices/reborn-led", generateKey: true });
    expect(fresh.certificate!.deviceUid).toBe(reborn.uid);
    const ok = await mqttConnect(s, "reborn-led", fresh.certificate!.certificatePem, fresh.privateKeyPem);
    expect(ok.error).toBeUndefined();
    await ok.client!.subscribeAsync(downlinkTopic("reborn-led"), { qos: 1 });
    ok.client!.end(true);

    // ListCertificates shows this incarnation's certificate only; the predecessor's is not its own.
    const list = await certs().listCertificates({ parent: "devices/reborn-led" });
    expect(list.certificates.map((c) => c.serialNumber)).toEqual([fresh.certificate!.serialNumber]);
    expect((await failure(certs().getCertificate({ name: issued.certificate!.name }))).code).toBe(Code.NotFound);
  }, 120_000); // many TLS handshakes: slow on a loaded 2-core machine (no timing is asserted)

  it("revokes every certificate of the device with reason cessationOfOperation", async () => {
    await devices().createDevice(led("retired-led"));
    const a = await certs().createCertificate({ parent: "devices/retired-led", generateKey: true });
    const b = await certs().createCertificate({ parent: "devices/retired-led", csr: (await createCsr("retired-led")).csrPem });
    await devices().deleteDevice({ name: "devices/retired-led" });
    const crl = new x509.X509Crl((await certs().getCertificateRevocationList({})).crlPem);
    for (const c of [a, b]) expect(crl.findRevoked(c.certificate!.serialNumber)?.reason).toBe(RevocationReason.CESSATION_OF_OPERATION);
    // Listing a deleted device's certificates: the device is gone.
    expect((await failure(certs().listCertificates({ parent: "devices/retired-led" }))).code).toBe(Code.NotFound);
  });
});

describe("reserved identities", () => {
  it.each(["tether", "admin", "guest", "mosquitto", "rabbitmq", "tether-host-123"])("refuses the device id %s on CreateDevice", async (id) => {
    const r = await refusal(devices().createDevice(led(id)));
    expect(r.code).toBe(Code.InvalidArgument);
    expect(r.fields).toEqual(["device_id"]);
    expect(r.message).toMatch(/reserved/);
  });

  it("refuses reserved template ids, prefixes, provisioned ids and CSR subjects", async () => {
    const template = (id: string, prefix: string) =>
      provisioning().createProvisioningTemplate({
        provisioningTemplateId: id,
        provisioningTemplate: { deviceKind: "led", deviceIdPrefix: prefix, allowedSerialNumbers: ["in"] },
      });
    for (const id of ["tether", "guest", "rabbitmq-node"]) {
      const r = await refusal(template(id, "led-"));
      expect([r.code, r.fields]).toEqual([Code.InvalidArgument, ["provisioning_template_id"]]);
    }
    const prefix = await refusal(template("bad-prefix", "tether-"));
    expect([prefix.code, prefix.fields]).toEqual([Code.InvalidArgument, ["provisioning_template.device_id_prefix"]]);
    // A serial that makes the reserved id "admin" (prefix "adm" + serial "in").
    await template("adm-batch", "adm");
    const claim = await provisioning().createClaimCertificate({ parent: "provisioningTemplates/adm-batch" });
    const asClaim = connectClient(s, ProvisioningService, "grpc", pem(s, claim.certificatePem, claim.privateKeyPem));
    const provisioned = await refusal(asClaim.provisionDevice({ serialNumber: "in", csr: (await createCsr(undefined)).csrPem }));
    expect([provisioned.code, provisioned.fields]).toEqual([Code.InvalidArgument, ["serial_number"]]);
    expect((await failure(devices().getDevice({ name: "devices/admin" }))).code).toBe(Code.NotFound);
    // A CSR asking for a reserved CN.
    await devices().createDevice(led("csr-asker"));
    const csr = await refusal(certs().createCertificate({ parent: "devices/csr-asker", csr: (await createCsr("tether")).csrPem }));
    expect([csr.code, csr.fields]).toEqual([Code.InvalidArgument, ["csr"]]);
  });

  it("refuses a device certificate with a reserved CN on the broker and the API, even one signed by the CA", async () => {
    const pki = await ensureDevPki(s.certsDir);
    const forged = await pki.ca.issue({ commonName: "tether", usage: "client", organizationalUnit: "devices" });
    expect((await mqttConnect(s, "tether", forged.certPem, forged.keyPem)).error).toMatch(/Not authorized/);
    const gw = connectClient(s, DeviceGatewayService, "connect", pem(s, forged.certPem, forged.keyPem));
    expect((await failure(gw.pollDownlink({}))).code).toBe(Code.Unauthenticated);
  });
});

describe("device ids and provisioning template ids", () => {
  it("live in disjoint namespaces; a template's ids are an admin's to register by hand", async () => {
    await provisioning().createProvisioningTemplate({
      provisioningTemplateId: "ns-batch",
      provisioningTemplate: { deviceKind: "led", deviceIdPrefix: "nsled-", serialNumberPattern: "[0-9]+" },
    });
    const sameId = await refusal(devices().createDevice(led("ns-batch")));
    expect([sameId.code, sameId.fields]).toEqual([Code.InvalidArgument, ["device_id"]]);
    await devices().createDevice(led("ns-device"));
    const templateOnDevice = await refusal(
      provisioning().createProvisioningTemplate({
        provisioningTemplateId: "ns-device",
        provisioningTemplate: { deviceKind: "led", deviceIdPrefix: "other-", serialNumberPattern: "[0-9]+" },
      }),
    );
    expect([templateOnDevice.code, templateOnDevice.fields]).toEqual([Code.InvalidArgument, ["provisioning_template_id"]]);
    // A plain user cannot take an id the template will hand out; an admin can.
    const nadia = bearerClient(s, DeviceService, await userToken(s, "nadia"));
    const taken = await failure(nadia.createDevice(led("nsled-42")));
    expect(taken.code).toBe(Code.PermissionDenied);
    expect(taken.rawMessage).toMatch(/provisioningTemplates\/ns-batch/);
    expect((await nadia.createDevice(led("nadia-led"))).name).toBe("devices/nadia-led");
    expect((await devices().createDevice(led("nsled-43"))).name).toBe("devices/nsled-43");
  });
});

// Last: it revokes the admin certificate every other test uses.
describe("the bootstrap admin certificate", () => {
  it("is listed under users/admin and, once revoked, refused by the API and the broker", async () => {
    const adminPem = await readFile(path.join(s.certsDir, "admin.crt"), "utf8");
    const serial = new x509.X509Certificate(adminPem).serialNumber.toLowerCase().replace(/^(00)+(?=..)/, "");
    const listed = await certs().listCertificates({ parent: "users/admin" });
    expect(listed.certificates.map((c) => [c.name, c.state])).toEqual([[`users/admin/certificates/${serial}`, Certificate_State.ACTIVE]]);
    const adminKey = await readFile(path.join(s.certsDir, "admin.key"), "utf8");
    expect((await mqttConnect(s, "admin-cli", adminPem, adminKey)).error).toBeUndefined();

    // Another admin (by password) revokes it: revoking it with itself would cut the very call.
    await connectClient(s, UserService, "grpc").createUser({ userId: "ops-admin", password: "pw-ops-admin-123456", user: { admin: true } });
    const { accessToken } = await anonymousClient(s, AuthService).login({ user: "ops-admin", password: "pw-ops-admin-123456" });
    const asOps = bearerClient(s, CertificateService, accessToken);
    const revoked = await asOps.revokeCertificate({ name: `users/admin/certificates/${serial}`, reason: RevocationReason.KEY_COMPROMISE });
    expect(revoked.state).toBe(Certificate_State.REVOKED);
    expect((await asOps.listCertificates({ parent: "users/admin" })).certificates[0]!.state).toBe(Certificate_State.REVOKED);
    const refused = await failure(connectClient(s, DeviceService, "connect").listDevices({}));
    expect(refused.code).toBe(Code.Unauthenticated);
    expect(refused.rawMessage).toMatch(/revoked/);
    expect((await mqttConnect(s, "admin-cli2", adminPem, adminKey)).error).toMatch(/Not authorized/);
  });
});
