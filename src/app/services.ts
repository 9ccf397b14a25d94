import type { DescFile, DescService } from "@bufbuild/protobuf";
import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import { file_tether_device_v1_downlink } from "../../gen/tether/device/v1/downlink_pb.js";
import { DeviceGatewayService } from "../../gen/tether/device/v1/gateway_service_pb.js";
import { file_tether_device_v1_uplink } from "../../gen/tether/device/v1/uplink_pb.js";
import { AlarmService } from "../../gen/tether/v1/alarm_service_pb.js";
import { AuditService } from "../../gen/tether/v1/audit_service_pb.js";
import { AuthService } from "../../gen/tether/v1/auth_service_pb.js";
import { CertificateService } from "../../gen/tether/v1/certificate_service_pb.js";
import { file_tether_v1_event } from "../../gen/tether/v1/event_pb.js";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { FirmwareService } from "../../gen/tether/v1/firmware_service_pb.js";
import { JobService } from "../../gen/tether/v1/job_service_pb.js";
import { ProvisioningService } from "../../gen/tether/v1/provisioning_service_pb.js";
import { RuleService } from "../../gen/tether/v1/rule_service_pb.js";
import { ShareService } from "../../gen/tether/v1/share_service_pb.js";
import { TaskService } from "../../gen/tether/v1/task_service_pb.js";
import { TelemetryService } from "../../gen/tether/v1/telemetry_service_pb.js";
import { UserService } from "../../gen/tether/v1/user_service_pb.js";
import { WebhookService } from "../../gen/tether/v1/webhook_service_pb.js";
import { alarmHandler } from "../api/alarm-handler.js";
import { auditHandler } from "../api/audit-handler.js";
import { authHandler } from "../api/auth-handler.js";
import { certificateHandler } from "../api/certificate-handler.js";
import { deviceHandler } from "../api/device-handler.js";
import { firmwareHandler } from "../api/firmware-handler.js";
import { gatewayHandler } from "../api/gateway-handler.js";
import type { HealthService } from "../api/health.js";
import { jobHandler } from "../api/job-handler.js";
import { provisioningHandler } from "../api/provisioning-handler.js";
import { createReflectionService } from "../api/reflection.js";
import { ruleHandler } from "../api/rule-handler.js";
import { shareHandler } from "../api/share-handler.js";
import { taskHandler } from "../api/task-handler.js";
import { telemetryHandler } from "../api/telemetry-handler.js";
import { userHandler } from "../api/user-handler.js";
import { webhookHandler } from "../api/webhook-handler.js";
import type { Clock } from "../core/clock.js";

/** One row of the services table: what is mounted, described by reflection and reported by health. */
export interface ServiceEntry {
  /** The fully-qualified service name (listed by reflection). */
  name: string;
  /** Generated descriptors reflection describes for it: its own file, plus any it wants tools to know. */
  files: DescFile[];
  mount(router: ConnectRouter): void;
  /** The grpc.health.v1 name it answers under; it follows the server's overall ("") status. */
  health?: string;
}

/** A typed row: the implementation must fit the service descriptor. */
export function service<S extends DescService>(
  desc: S,
  implementation: Partial<ServiceImpl<S>>,
  opts: { health?: boolean; alsoDescribes?: DescFile[] } = {},
): ServiceEntry {
  return {
    name: desc.typeName,
    files: [desc.file, ...(opts.alsoDescribes ?? [])],
    mount: (router) => void router.service(desc, implementation),
    health: opts.health ? desc.typeName : undefined,
  };
}

/** The implementations the public API is built from (each part's core service). */
export interface ServiceParts {
  clock: Clock;
  devices: Parameters<typeof deviceHandler>[0];
  deviceWatch: Parameters<typeof deviceHandler>[1];
  connectivity: Parameters<typeof deviceHandler>[2];
  tasks: Parameters<typeof taskHandler>[0];
  telemetry: Parameters<typeof telemetryHandler>[0];
  rules: Parameters<typeof ruleHandler>[0];
  gateway: Parameters<typeof gatewayHandler>[0];
  jobs: Parameters<typeof jobHandler>[0];
  certificates: Parameters<typeof certificateHandler>[0];
  provisioning: Parameters<typeof provisioningHandler>[0];
  auth: Parameters<typeof authHandler>[0];
  users: Parameters<typeof userHandler>[0];
  shares: Parameters<typeof shareHandler>[0];
  webhooks: Parameters<typeof webhookHandler>[0];
  alarms: Parameters<typeof alarmHandler>[0];
  audit: Parameters<typeof auditHandler>[0];
  firmware: Parameters<typeof firmwareHandler>[0];
}

/** Tether's public services, in the order reflection lists them. */
export function publicServices(p: ServiceParts): ServiceEntry[] {
  return [
    service(DeviceService, deviceHandler(p.devices, p.deviceWatch, p.connectivity), { health: true }),
    service(TaskService, taskHandler(p.tasks), { health: true }),
    service(TelemetryService, telemetryHandler(p.telemetry), { health: true }),
    service(RuleService, ruleHandler(p.rules), { health: true }),
    // Devices' MQTT messages are described too, though no RPC carries them: tools decode payloads with them.
    service(DeviceGatewayService, gatewayHandler(p.gateway), { health: true, alsoDescribes: [file_tether_device_v1_downlink, file_tether_device_v1_uplink] }),
    service(JobService, jobHandler(p.jobs), { health: true }),
    service(CertificateService, certificateHandler(p.certificates), { health: true }),
    service(ProvisioningService, provisioningHandler(p.provisioning), { health: true }),
    service(AuthService, authHandler(p.auth, p.clock), { health: true }),
    service(UserService, userHandler(p.users), { health: true }),
    service(ShareService, shareHandler(p.shares), { health: true }),
    // Webhook bodies are tether.v1.Event: described so tools can decode them.
    service(WebhookService, webhookHandler(p.webhooks), { health: true, alsoDescribes: [file_tether_v1_event] }),
    service(AlarmService, alarmHandler(p.alarms), { health: true }),
    service(AuditService, auditHandler(p.audit), { health: true }),
    service(FirmwareService, firmwareHandler(p.firmware), { health: true }),
  ];
}

/** The health names the table declares (mirrored from the server's status by the dependency monitor). */
export const healthNames = (entries: ServiceEntry[]) => entries.flatMap((e) => (e.health ? [e.health] : []));

/**
 * The Connect routes for the table, plus grpc.health.v1 and server reflection, whose service list
 * and descriptors come from the same rows (a mounted service reflection does not describe, or the
 * reverse, cannot happen).
 */
export function serviceRoutes(entries: ServiceEntry[], health: HealthService): (router: ConnectRouter) => void {
  const all: ServiceEntry[] = [...entries, { name: "grpc.health.v1.Health", files: [], mount: (router) => health.routes(router) }];
  const reflection = createReflectionService(
    all.flatMap((e) => e.files),
    [...all.map((e) => e.name), "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"],
  );
  return (router) => {
    for (const e of all) e.mount(router);
    reflection(router);
  };
}
