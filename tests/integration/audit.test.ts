import "reflect-metadata";
import { randomUUID } from "node:crypto";
import type { DescService } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { file_tether_device_v1_gateway_service } from "../../gen/tether/device/v1/gateway_service_pb.js";
import { type AuditEvent, AuditEvent_Credential } from "../../gen/tether/v1/audit_pb.js";
import { AuditService, file_tether_v1_audit_service } from "../../gen/tether/v1/audit_service_pb.js";
import { file_tether_v1_auth_service } from "../../gen/tether/v1/auth_service_pb.js";
import { CertificateService, file_tether_v1_certificate_service } from "../../gen/tether/v1/certificate_service_pb.js";
import { FirmwareService, file_tether_v1_firmware_service } from "../../gen/tether/v1/firmware_service_pb.js";
import { ProductKind } from "../../gen/tether/v1/device_pb.js";
import { DeviceService, file_tether_v1_device_service } from "../../gen/tether/v1/device_service_pb.js";
import { file_tether_v1_job_service, JobService } from "../../gen/tether/v1/job_service_pb.js";
import { file_tether_v1_provisioning_service, ProvisioningService } from "../../gen/tether/v1/provisioning_service_pb.js";
import { file_tether_v1_rule_service, RuleService } from "../../gen/tether/v1/rule_service_pb.js";
import { file_tether_v1_share_service, Grant_Role, ShareService } from "../../gen/tether/v1/share_service_pb.js";
import { file_tether_v1_task_service, TaskService } from "../../gen/tether/v1/task_service_pb.js";
import { file_tether_v1_telemetry_service } from "../../gen/tether/v1/telemetry_service_pb.js";
import { file_tether_v1_user_service, UserService } from "../../gen/tether/v1/user_service_pb.js";
import { AlarmSeverity } from "../../gen/tether/v1/alarm_pb.js";
import { AlarmService, file_tether_v1_alarm_service } from "../../gen/tether/v1/alarm_service_pb.js";
import { EventTrigger_Comparison } from "../../gen/tether/v1/rule_pb.js";
import { WebhookDelivery_State } from "../../gen/tether/v1/webhook_pb.js";
import { file_tether_v1_webhook_service, WebhookService } from "../../gen/tether/v1/webhook_service_pb.js";
import { createCsr } from "../../src/pki/certificate-issuer.js";
import { bearerClient, captureLogger, userToken } from "../helpers/auth.js";
import { pem } from "../helpers/certificates.js";
import { eventually } from "../helpers/devices.js";
import { connectClient, type Pem, startTestStack, type TestStack } from "../helpers/stack.js";

// Every mutating RPC of the contract writes an audit event, as the right principal, in the
// transaction of its change. The list of methods comes from the generated descriptors: a new
// method fails here until it has a scenario below (or a reasoned place in NOT_MUTATING).

/** Every service file of the public contract (the test fails if a service is missing from here: see the last test). */
const FILES = [
  file_tether_v1_device_service,
  file_tether_v1_task_service,
  file_tether_v1_rule_service,
  file_tether_v1_job_service,
  file_tether_v1_certificate_service,
  file_tether_v1_provisioning_service,
  file_tether_v1_share_service,
  file_tether_v1_user_service,
  file_tether_v1_auth_service,
  file_tether_v1_telemetry_service,
  file_tether_v1_audit_service,
  file_tether_v1_webhook_service,
  file_tether_v1_alarm_service,
  file_tether_v1_firmware_service,
  file_tether_device_v1_gateway_service,
];

/** Methods that change nothing, by name: reads, streams, dry runs. */
const READ_LIKE = /^(Get|List|Watch|Query|Count|Check|Describe|Stream|Preview)[A-Z]/;

/**
 * Mutating methods deliberately not audited by the API, and why. Keep it short: each entry is a
 * decision, not a convenience.
 */
const NOT_AUDITED: Record<string, string> = {
  // No principal yet: a stranger's guesses must not fill the audit table. The login throttle and
  // the `login refused` log record attempts; the session itself is the record of a sign-in.
  "tether.v1.AuthService/Login": "before authentication",
  "tether.v1.AuthService/Refresh": "before authentication (refresh token only)",
  "tether.v1.AuthService/Logout": "called with a refresh token only; ends a session recorded in session_revocations",
  // A device's acks, results and polls move its tasks through their lifecycle (recorded on each
  // task) and are the hot path: not mutating calls in the audit's sense.
  "tether.device.v1.DeviceGatewayService/PublishUplink": "device words, recorded on the tasks",
  "tether.device.v1.DeviceGatewayService/PollDownlink": "a device fetching its tasks",
};

let s: TestStack;
let alice: string;
let claim: Pem;
const log = captureLogger();
const secrets: string[] = [];
const admin = <S extends DescService>(service: S, as: Pem = s.admin) => connectClient(s, service, "grpc", as);
const asAlice = <S extends DescService>(service: S) => bearerClient(s, service, alice);
const h = (id: string) => ({ headers: { "x-request-id": id } });
const led = { kind: { case: "led" as const, value: {} } };
const power = { command: { kind: { case: "led" as const, value: { action: { case: "setPower" as const, value: true } } } } };
const ADMIN = "users/admin";

beforeAll(async () => {
  s = await startTestStack(
    {
      // A webhook to a closed port, tried once: its deliveries go DEAD at once, for the replay scenario.
      TETHER_WEBHOOK_ALLOW_HTTP: "1",
      TETHER_WEBHOOK_MAX_ATTEMPTS: "1",
      TETHER_WEBHOOK_POLL_MS: "20",
      // The offline alarm of the acknowledge scenario is raised by the next sweep.
      TETHER_ALARM_SWEEP_MS: "100",
    },
    { log: log.log },
  );
  alice = await userToken(s, "alice", "alice-password-1");
  secrets.push("alice-password-1", alice);
  await admin(ProvisioningService).createProvisioningTemplate({
    provisioningTemplateId: "audit-leds",
    provisioningTemplate: { deviceKind: "led", deviceIdPrefix: "aud-", allowedSerialNumbers: ["SN-1"] },
  });
  const c = await admin(ProvisioningService).createClaimCertificate({ parent: "provisioningTemplates/audit-leds" });
  secrets.push(c.privateKeyPem);
  claim = pem(s, c.certificatePem, c.privateKeyPem);
  await admin(WebhookService).createWebhook({ webhookId: "aud-dead", webhook: { url: "http://127.0.0.1:1/", eventTypes: ["device.created"] } });
  await admin(DeviceService).createDevice({ deviceId: "aud-led", device: led });
  // aud-led never connects: this rule raises an alarm on it at the next sweep.
  await admin(RuleService).createRule({
    ruleId: "aud-offline",
    rule: {
      trigger: { case: "eventTrigger", value: { metric: "online", comparison: EventTrigger_Comparison.EQ, threshold: 0 } },
      target: { case: "device", value: "devices/aud-led" },
      alarm: { severity: AlarmSeverity.MAJOR },
    },
  });
  await asAlice(DeviceService).createDevice({ deviceId: "alice-led", device: led });
}, 60_000);
afterAll(async () => {
  await s?.cleanup();
});

/** The events a request id wrote (the admin reads them through ListAuditEvents). */
async function eventsOf(requestId: string, method: string): Promise<AuditEvent[]> {
  const res = await admin(AuditService).listAuditEvents({ method, pageSize: 1000 });
  return res.auditEvents.filter((e) => e.requestId === requestId);
}
const withChange = (method: string) => s.app.counters.get("tether_audit_events_total", { how: "with_change", method });

/** One successful call per mutating method; each returns the principal it calls as. */
const scenarios: Record<string, (id: string) => Promise<string>> = {
  "tether.v1.DeviceService/CreateDevice": async (id) => (
    await asAlice(DeviceService).createDevice({ deviceId: "made-led", device: led }, h(id)), "users/alice"
  ),
  "tether.v1.DeviceService/UpdateDevice": async (id) => (
    await asAlice(DeviceService).updateDevice(
      { device: { name: "devices/alice-led", displayName: "Hall", ...led }, updateMask: { paths: ["display_name"] } },
      h(id),
    ),
    "users/alice"
  ),
  "tether.v1.DeviceService/DeleteDevice": async (id) => (await asAlice(DeviceService).deleteDevice({ name: "devices/made-led" }, h(id)), "users/alice"),
  "tether.v1.TaskService/CreateTask": async (id) => (await asAlice(TaskService).createTask({ parent: "devices/alice-led", task: power }, h(id)), "users/alice"),
  "tether.v1.TaskService/CancelTask": async (id) => {
    const t = await admin(TaskService).createTask({ parent: "devices/aud-led", task: power });
    await admin(TaskService).cancelTask({ name: t.name }, h(id));
    return ADMIN;
  },
  "tether.v1.RuleService/CreateRule": async (id) => (await admin(RuleService).createRule({ ruleId: "r1", rule: cronRule }, h(id)), ADMIN),
  "tether.v1.RuleService/UpdateRule": async (id) => (
    await admin(RuleService).updateRule({ rule: { name: "rules/r1", displayName: "R one" }, updateMask: { paths: ["display_name"] } }, h(id)), ADMIN
  ),
  "tether.v1.RuleService/PauseRule": async (id) => (await admin(RuleService).pauseRule({ name: "rules/r1" }, h(id)), ADMIN),
  "tether.v1.RuleService/ResumeRule": async (id) => (await admin(RuleService).resumeRule({ name: "rules/r1" }, h(id)), ADMIN),
  "tether.v1.RuleService/DeleteRule": async (id) => (await admin(RuleService).deleteRule({ name: "rules/r1" }, h(id)), ADMIN),
  "tether.v1.JobService/CreateJob": async (id) => (
    await admin(JobService).createJob(
      { jobId: "j1", job: { command: power.command, target: { case: "selector", value: { filter: 'name = "devices/aud-led"' } }, startTime: later() } },
      h(id),
    ),
    ADMIN
  ),
  "tether.v1.JobService/PauseJob": async (id) => (await admin(JobService).pauseJob({ name: "jobs/j1" }, h(id)), ADMIN),
  "tether.v1.JobService/ResumeJob": async (id) => (await admin(JobService).resumeJob({ name: "jobs/j1" }, h(id)), ADMIN),
  "tether.v1.JobService/CancelJob": async (id) => (await admin(JobService).cancelJob({ name: "jobs/j1" }, h(id)), ADMIN),
  "tether.v1.CertificateService/CreateCertificate": async (id) => {
    const res = await admin(CertificateService).createCertificate({ parent: "devices/aud-led", generateKey: true }, h(id));
    secrets.push(res.privateKeyPem);
    certificate = res.certificate!.name;
    return ADMIN;
  },
  "tether.v1.CertificateService/RenewCertificate": async (id) => {
    const res = await admin(CertificateService).renewCertificate({ name: certificate, generateKey: true }, h(id));
    secrets.push(res.privateKeyPem);
    return ADMIN;
  },
  "tether.v1.CertificateService/RevokeCertificate": async (id) => (await admin(CertificateService).revokeCertificate({ name: certificate }, h(id)), ADMIN),
  "tether.v1.ProvisioningService/CreateProvisioningTemplate": async (id) => (
    await admin(ProvisioningService).createProvisioningTemplate(
      { provisioningTemplateId: "t2", provisioningTemplate: { deviceKind: "led", deviceIdPrefix: "t2-", allowedSerialNumbers: ["SN-8"] } },
      h(id),
    ),
    ADMIN
  ),
  "tether.v1.ProvisioningService/AddAllowedSerialNumbers": async (id) => (
    await admin(ProvisioningService).addAllowedSerialNumbers({ name: "provisioningTemplates/t2", serialNumbers: ["SN-9"] }, h(id)), ADMIN
  ),
  "tether.v1.ProvisioningService/CreateClaimCertificate": async (id) => {
    const c = await admin(ProvisioningService).createClaimCertificate({ parent: "provisioningTemplates/t2" }, h(id));
    secrets.push(c.privateKeyPem);
    return ADMIN;
  },
  "tether.v1.ProvisioningService/DeleteProvisioningTemplate": async (id) => (
    await admin(ProvisioningService).deleteProvisioningTemplate({ name: "provisioningTemplates/t2" }, h(id)), ADMIN
  ),
  "tether.v1.ProvisioningService/ProvisionDevice": async (id) => {
    const { csrPem } = await createCsr("aud-sn-1");
    await admin(ProvisioningService, claim).provisionDevice({ serialNumber: "SN-1", csr: csrPem }, h(id));
    return "provisioningTemplates/audit-leds";
  },
  "tether.v1.UserService/CreateUser": async (id) => (await admin(UserService).createUser({ userId: "bob", password: "bob-password-1" }, h(id)), ADMIN),
  "tether.v1.UserService/SetPassword": async (id) => (await admin(UserService).setPassword({ name: "users/bob", password: "bob-password-2" }, h(id)), ADMIN),
  "tether.v1.ShareService/CreateGrant": async (id) => {
    const g = await asAlice(ShareService).createGrant(
      { grant: { principal: "users/bob", target: { case: "device", value: "devices/alice-led" }, role: Grant_Role.VIEWER } },
      h(id),
    );
    grant = g.name;
    return "users/alice";
  },
  "tether.v1.ShareService/DeleteGrant": async (id) => (await asAlice(ShareService).deleteGrant({ name: grant }, h(id)), "users/alice"),
  "tether.v1.UserService/CreateGroup": async (id) => (await admin(UserService).createGroup({ groupId: "ops" }, h(id)), ADMIN),
  "tether.v1.UserService/AddGroupMember": async (id) => (await admin(UserService).addGroupMember({ group: "groups/ops", user: "users/bob" }, h(id)), ADMIN),
  "tether.v1.UserService/RemoveGroupMember": async (id) => (
    await admin(UserService).removeGroupMember({ group: "groups/ops", user: "users/bob" }, h(id)), ADMIN
  ),
  "tether.v1.UserService/DeleteGroup": async (id) => (await admin(UserService).deleteGroup({ name: "groups/ops" }, h(id)), ADMIN),
  "tether.v1.UserService/CreateApiKey": async (id) => {
    const k = await asAlice(UserService).createApiKey({ parent: "users/me", apiKey: { displayName: "ci" }, currentPassword: "alice-password-1" }, h(id));
    secrets.push(k.secret);
    apiKey = k;
    return "users/alice";
  },
  "tether.v1.UserService/DeleteApiKey": async (id) => {
    // Called with the key itself: the principal names the key.
    await bearerClient(s, UserService, apiKey!.secret).deleteApiKey({ name: apiKey!.name }, h(id));
    return apiKey!.name;
  },
  "tether.v1.UserService/DeleteUser": async (id) => (await admin(UserService).deleteUser({ name: "users/bob" }, h(id)), ADMIN),
  "tether.v1.WebhookService/CreateWebhook": async (id) => {
    const w = await admin(WebhookService).createWebhook(
      { webhookId: "aud-hook", webhook: { url: "http://127.0.0.1:1/", eventTypes: ["task.state_changed"] } },
      h(id),
    );
    secrets.push(w.secret);
    return ADMIN;
  },
  "tether.v1.WebhookService/UpdateWebhook": async (id) => (
    await admin(WebhookService).updateWebhook({ webhook: { name: "webhooks/aud-hook", displayName: "Audit" }, updateMask: { paths: ["display_name"] } }, h(id)),
    ADMIN
  ),
  "tether.v1.WebhookService/DeleteWebhook": async (id) => (await admin(WebhookService).deleteWebhook({ name: "webhooks/aud-hook" }, h(id)), ADMIN),
  "tether.v1.WebhookService/RotateWebhookSecret": async (id) => {
    const w = await admin(WebhookService).rotateWebhookSecret({ name: "webhooks/aud-dead" }, h(id));
    secrets.push(w.secret);
    return ADMIN;
  },
  "tether.v1.WebhookService/ReplayWebhookDelivery": async (id) => {
    // aud-led's device.created went DEAD after its one try at a closed port.
    const dead = await eventually(async () => {
      const page = await admin(WebhookService).listWebhookDeliveries({ parent: "webhooks/aud-dead", state: WebhookDelivery_State.DEAD });
      return page.deliveries[0];
    });
    await admin(WebhookService).replayWebhookDelivery({ name: dead.name }, h(id));
    return ADMIN;
  },
  "tether.v1.FirmwareService/BeginFirmwareUpload": async (id) => (
    await admin(FirmwareService).beginFirmwareUpload({ firmware: { kind: ProductKind.LED, version: "1.0.0" }, firmwareId: "aud-fw" }, h(id)), ADMIN
  ),
  "tether.v1.FirmwareService/UploadFirmwareChunk": async (id) => (
    await admin(FirmwareService).uploadFirmwareChunk({ name: "firmwares/aud-fw", offset: 0n, data: new Uint8Array(100).fill(7) }, h(id)), ADMIN
  ),
  "tether.v1.FirmwareService/CommitFirmwareUpload": async (id) => (
    await admin(FirmwareService).commitFirmwareUpload({ name: "firmwares/aud-fw" }, h(id)), ADMIN
  ),
  "tether.v1.FirmwareService/DeleteFirmware": async (id) => (await admin(FirmwareService).deleteFirmware({ name: "firmwares/aud-fw" }, h(id)), ADMIN),
  "tether.v1.FirmwareService/RotateFirmwareSigningKey": async (id) => (await admin(FirmwareService).rotateFirmwareSigningKey({}, h(id)), ADMIN),
  "tether.v1.AlarmService/AcknowledgeAlarm": async (id) => {
    const alarm = await eventually(async () => (await admin(AlarmService).listAlarms({ filter: { device: "devices/aud-led" } })).alarms[0]);
    await admin(AlarmService).acknowledgeAlarm({ name: alarm.name, comment: "seen" }, h(id));
    return ADMIN;
  },
};
const cronRule = {
  trigger: { case: "cron" as const, value: { expression: "0 0 3 * * *", timeZone: "UTC" } },
  target: { case: "device" as const, value: "devices/aud-led" },
  command: power.command,
};
const later = () => timestampFromDate(new Date(Date.now() + 86_400_000));
let certificate = "";
let grant = "";
let apiKey: { name: string; secret: string } | undefined;

/** Every method of the contract as `service/method`, in file order. */
function allMethods(): Array<{ procedure: string; name: string }> {
  return FILES.flatMap((f) => f.services.flatMap((svc) => svc.methods.map((m) => ({ procedure: `${svc.typeName}/${m.name}`, name: m.name }))));
}
const mutating = () => allMethods().filter((m) => !READ_LIKE.test(m.name) && !(m.procedure in NOT_AUDITED));

describe("every mutating RPC writes an audit event", () => {
  it("each one, called once, writes exactly one event as its caller, with the change", async () => {
    const methods = new Set(mutating().map((m) => m.procedure));
    const missing = [...methods].filter((m) => !(m in scenarios));
    expect(missing, "mutating methods without a scenario (add one, or a reasoned NOT_AUDITED entry)").toEqual([]);
    expect(
      Object.keys(scenarios).filter((m) => !methods.has(m)),
      "scenarios of methods the contract does not have",
    ).toEqual([]);
    const wrong: string[] = [];
    // In the scenarios' order: each builds on the one before (create, update, delete).
    for (const [procedure, scenario] of Object.entries(scenarios)) {
      const id = `audit-${randomUUID()}`;
      const before = withChange(procedure);
      const principal = await scenario(id);
      const events = await eventsOf(id, procedure);
      const e = events[0];
      if (events.length !== 1) wrong.push(`${procedure}: ${events.length} events`);
      else if (e!.principal !== principal) wrong.push(`${procedure}: principal ${e!.principal}, expected ${principal}`);
      else if (e!.statusCode !== 0) wrong.push(`${procedure}: status ${e!.statusCode}`);
      else if (e!.resource === "") wrong.push(`${procedure}: no resource`);
      // The event went into the change's own transaction, not written after the call.
      else if (withChange(procedure) !== before + 1) wrong.push(`${procedure}: not written with the change`);
    }
    expect(wrong).toEqual([]);
  }, 120_000);

  it("the list of methods comes from the descriptors and can fail: a made-up method would need a scenario", () => {
    expect(mutating().length).toBeGreaterThan(30);
    expect(READ_LIKE.test("CreateThing")).toBe(false);
    expect(scenarios["tether.v1.ThingService/CreateThing"]).toBeUndefined();
    // Every public service of the server is walked here.
    const walked = new Set(FILES.flatMap((f) => f.services.map((x) => x.typeName)));
    for (const svc of ["tether.v1.DeviceService", "tether.v1.AuditService", "tether.v1.UserService"]) expect(walked.has(svc)).toBe(true);
  });

  it("names the credential: a certificate with its serial, an access token, an API key", async () => {
    const [cert] = await eventsOfMethod("tether.v1.RuleService/CreateRule");
    expect(cert!.credential).toBe(AuditEvent_Credential.CERTIFICATE);
    expect(cert!.certificateSerial).toMatch(/^[0-9a-f]+$/);
    const [token] = await eventsOfMethod("tether.v1.ShareService/CreateGrant");
    expect(token!.credential).toBe(AuditEvent_Credential.ACCESS_TOKEN);
    expect(token!.certificateSerial).toBe("");
    const [key] = await eventsOfMethod("tether.v1.UserService/DeleteApiKey");
    expect(key!.credential).toBe(AuditEvent_Credential.API_KEY);
    expect(key!.principal).toMatch(/^users\/alice\/apiKeys\//);
  });

  it("records the changed field paths, never values", async () => {
    const [update] = await eventsOfMethod("tether.v1.DeviceService/UpdateDevice");
    expect(update!.fieldPaths).toEqual(["display_name"]);
    expect(update!.resource).toBe("devices/alice-led");
    const [created] = (await admin(AuditService).listAuditEvents({ method: "CreateTask", resource: "devices/alice-led" })).auditEvents;
    expect(created!.resource).toMatch(/^devices\/alice-led\/tasks\/[0-9a-f-]{36}$/);
    expect(created!.fieldPaths).toContain("command");
  });
});

async function eventsOfMethod(method: string): Promise<AuditEvent[]> {
  return (await admin(AuditService).listAuditEvents({ method, pageSize: 10 })).auditEvents;
}

describe("refused and failed calls", () => {
  it("a refused call is audited with its code, after it failed", async () => {
    const id = `refused-${randomUUID()}`;
    // alice may not delete the admin's device: she cannot even see it (NOT_FOUND).
    await expect(asAlice(DeviceService).deleteDevice({ name: "devices/aud-led" }, h(id))).rejects.toMatchObject({ code: Code.NotFound });
    const [e] = await eventsOf(id, "tether.v1.DeviceService/DeleteDevice");
    expect(e).toMatchObject({ principal: "users/alice", statusCode: Code.NotFound, resource: "devices/aud-led" });
    expect(await admin(DeviceService).getDevice({ name: "devices/aud-led" })).toBeDefined();
  });

  it("a call that fails validation is audited as INVALID_ARGUMENT, a permission refusal as PERMISSION_DENIED", async () => {
    const id = `invalid-${randomUUID()}`;
    await expect(admin(DeviceService).createDevice({ deviceId: "Bad Id!", device: led }, h(id))).rejects.toMatchObject({ code: Code.InvalidArgument });
    expect((await eventsOf(id, "tether.v1.DeviceService/CreateDevice"))[0]).toMatchObject({ statusCode: Code.InvalidArgument, principal: ADMIN });
    const id2 = `denied-${randomUUID()}`;
    await expect(asAlice(UserService).createUser({ userId: "mallory", password: "mallory-password-1" }, h(id2))).rejects.toMatchObject({
      code: Code.PermissionDenied,
    });
    expect((await eventsOf(id2, "tether.v1.UserService/CreateUser"))[0]).toMatchObject({ statusCode: Code.PermissionDenied, principal: "users/alice" });
  });

  it("an unauthenticated stranger writes nothing (refusals before authentication are logged instead)", async () => {
    const id = `stranger-${randomUUID()}`;
    const stranger = bearerClient(s, DeviceService, "not-a-token");
    await expect(stranger.createDevice({ deviceId: "x-led", device: led }, h(id))).rejects.toMatchObject({ code: Code.Unauthenticated });
    expect(await eventsOf(id, "tether.v1.DeviceService/CreateDevice")).toEqual([]);
  });
});

describe("rights on ListAuditEvents and WatchAuditEvents", () => {
  it("a user sees her own calls and events on her devices, not another user's device events", async () => {
    const carol = await userToken(s, "carol", "carol-password-1");
    secrets.push("carol-password-1", carol);
    await bearerClient(s, DeviceService, carol).createDevice({ deviceId: "carol-led", device: led });
    await bearerClient(s, TaskService, carol).createTask({ parent: "devices/carol-led", task: power });
    // The admin acts on carol's device: carol sees it (her device), alice does not.
    await admin(DeviceService).updateDevice({ device: { name: "devices/carol-led", displayName: "Carol's", ...led }, updateMask: { paths: ["display_name"] } });
    const seenBy = async (token: string) => (await bearerClient(s, AuditService, token).listAuditEvents({ pageSize: 1000 })).auditEvents;
    const aliceSees = await seenBy(alice);
    expect(aliceSees.length).toBeGreaterThan(0);
    expect(aliceSees.some((e) => e.resource.startsWith("devices/carol-led"))).toBe(false);
    expect(aliceSees.every((e) => e.principal.startsWith("users/alice") || e.resource.startsWith("devices/alice-led"))).toBe(true);
    const carolSees = await seenBy(carol);
    expect(carolSees.some((e) => e.principal === ADMIN && e.resource === "devices/carol-led")).toBe(true);
    expect(carolSees.some((e) => e.resource.startsWith("devices/alice-led"))).toBe(false);
    // An explicit filter does not widen it.
    expect(await bearerClient(s, AuditService, alice).listAuditEvents({ resource: "devices/carol-led" })).toMatchObject({ auditEvents: [] });
  });

  it("pages newest first with tokens and filters by principal, resource and time", async () => {
    const all = (await admin(AuditService).listAuditEvents({ principal: "users/alice/*", pageSize: 1000 })).auditEvents;
    expect(all.length).toBeGreaterThan(3);
    const ids = all.map((e) => BigInt(e.name.slice("auditEvents/".length)));
    expect([...ids].sort((a, b) => (a > b ? -1 : 1))).toEqual(ids);
    const first = await admin(AuditService).listAuditEvents({ principal: "users/alice/*", pageSize: 2 });
    const second = await admin(AuditService).listAuditEvents({ principal: "users/alice/*", pageSize: 2, pageToken: first.nextPageToken });
    expect([...first.auditEvents, ...second.auditEvents].map((e) => e.name)).toEqual(all.slice(0, 4).map((e) => e.name));
    await expect(admin(AuditService).listAuditEvents({ principal: "users/bob", pageToken: first.nextPageToken })).rejects.toMatchObject({
      code: Code.InvalidArgument,
    });
    const exact = (await admin(AuditService).listAuditEvents({ principal: "users/alice", pageSize: 1000 })).auditEvents;
    expect(exact.every((e) => e.principal === "users/alice")).toBe(true);
    expect((await admin(AuditService).listAuditEvents({ resource: "devices/alice-led", pageSize: 1000 })).auditEvents.length).toBeGreaterThan(0);
    const future = timestampFromDate(new Date(Date.now() + 3_600_000));
    expect((await admin(AuditService).listAuditEvents({ startTime: future })).auditEvents).toEqual([]);
    await expect(admin(AuditService).listAuditEvents({ startTime: future, endTime: future })).rejects.toMatchObject({ code: Code.InvalidArgument });
  });

  it("WatchAuditEvents streams what the caller may see as it is committed", async () => {
    const ctrl = new AbortController();
    const seen: AuditEvent[] = [];
    const watching = (async () => {
      try {
        for await (const r of bearerClient(s, AuditService, alice).watchAuditEvents({}, { signal: ctrl.signal })) seen.push(r.auditEvent!);
      } catch (err) {
        if (!ctrl.signal.aborted) throw err;
      }
    })();
    // The stream is open once a probe of alice's own shows up.
    await eventually(async () => {
      await asAlice(DeviceService).updateDevice({
        device: { name: "devices/alice-led", displayName: `probe ${Date.now()}`, ...led },
        updateMask: { paths: ["display_name"] },
      });
      return seen.length > 0;
    });
    await admin(DeviceService).updateDevice({
      device: { name: "devices/carol-led", displayName: "not for alice", ...led },
      updateMask: { paths: ["display_name"] },
    });
    await asAlice(TaskService).createTask({ parent: "devices/alice-led", task: power });
    await eventually(async () => seen.some((e) => e.method === "tether.v1.TaskService/CreateTask"));
    ctrl.abort();
    await watching;
    expect(seen.some((e) => e.resource === "devices/carol-led")).toBe(false);
  });
});

describe("rule firings", () => {
  it("a firing is audited as the rule, and its task names the rule as creator", async () => {
    const at = new Date(Date.now() + 1500);
    await admin(RuleService).createRule({
      ruleId: "soon",
      rule: { trigger: { case: "oneShotTime", value: timestampFromDate(at) }, target: { case: "device", value: "devices/alice-led" }, command: power.command },
    });
    const fired = await eventually(async () => (await eventsOfMethod("tether.rules/Fire")).find((e) => e.principal === "rules/soon"), 15_000);
    expect(fired).toMatchObject({ resource: "rules/soon", credential: AuditEvent_Credential.INTERNAL, statusCode: 0 });
    // A rule on alice's device: its firings are hers to see.
    const aliceSees = (await bearerClient(s, AuditService, alice).listAuditEvents({ principal: "rules/soon" })).auditEvents;
    expect(aliceSees.map((e) => e.name)).toEqual([fired.name]);
    const tasks = (await admin(TaskService).listTasks({ parent: "devices/alice-led", pageSize: 1000 })).tasks;
    expect(tasks.filter((t) => t.creator === "rules/soon")).toHaveLength(1);
  });
});

describe("job steps", () => {
  it("a rollout step is audited as the job, and its tasks name the job as creator", async () => {
    await admin(JobService).createJob({
      jobId: "roll",
      job: { command: power.command, target: { case: "selector", value: { filter: 'name = "devices/alice-led"' } } },
    });
    await eventually(async () => (await s.app.runJobs(), (await eventsOfMethod("tether.jobs/Dispatch")).some((e) => e.principal === "jobs/roll")));
    const [step] = (await admin(AuditService).listAuditEvents({ principal: "jobs/roll" })).auditEvents;
    expect(step).toMatchObject({ resource: "jobs/roll", credential: AuditEvent_Credential.INTERNAL, method: "tether.jobs/Dispatch" });
    expect(step!.fieldPaths).toContain("dispatched_count");
    const tasks = (await admin(TaskService).listTasks({ parent: "devices/alice-led", pageSize: 1000 })).tasks;
    expect(tasks.filter((t) => t.creator === "jobs/roll")).toHaveLength(1);
  });
});

describe("secrets", () => {
  it("no audit row carries a password, token, API key secret or private key", async () => {
    const rows = (await admin(AuditService).listAuditEvents({ pageSize: 1000 })).auditEvents;
    const text = JSON.stringify(rows, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v));
    expect(rows.length).toBeGreaterThan(30);
    for (const secret of secrets) {
      expect(secret.length).toBeGreaterThan(8);
      expect(text.includes(secret), "a secret in the audit log").toBe(false);
    }
    expect(text).not.toMatch(/PRIVATE KEY|tether_[A-Za-z0-9]/);
  });
});

describe("Task.creator", () => {
  it("names the user, the API key, or the rule that created the task", async () => {
    const byAlice = await asAlice(TaskService).createTask({ parent: "devices/alice-led", task: power });
    expect(byAlice.creator).toBe("users/alice");
    const byAdmin = await admin(TaskService).createTask({ parent: "devices/aud-led", task: power });
    expect(byAdmin.creator).toBe(ADMIN);
    const key = await asAlice(UserService).createApiKey({ parent: "users/me", apiKey: { displayName: "creator" }, currentPassword: "alice-password-1" });
    const byKey = await bearerClient(s, TaskService, key.secret).createTask({ parent: "devices/alice-led", task: power });
    expect(byKey.creator).toBe(key.name);
    expect((await asAlice(TaskService).getTask({ name: byKey.name })).creator).toBe(key.name);
  });
});
