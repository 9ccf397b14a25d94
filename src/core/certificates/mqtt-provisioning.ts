import { create } from "@bufbuild/protobuf";
import { type ProvisioningRequest, type ProvisioningResponse, ProvisioningResponseSchema } from "../../../gen/tether/device/v1/provisioning_pb.js";
import { TetherError } from "../errors.js";
import type { CoreLogger } from "../log.js";
import type { ProvisioningService } from "./provisioning-service.js";

/**
 * Answers a provisioning request that arrived over MQTT: the same ProvisionDevice as the API, with
 * the template taken from the topic (which the broker only lets that template's claim use). A
 * refusal becomes the response's `error`, never a dropped message, so the device learns why.
 */
export async function answerProvisioning(service: ProvisioningService, templateId: string, req: ProvisioningRequest, log: CoreLogger): Promise<ProvisioningResponse> {
  try {
    const res = await service.provisionDevice(templateId, { $typeName: "tether.v1.ProvisionDeviceRequest", serialNumber: req.serialNumber, csr: req.csr });
    return create(ProvisioningResponseSchema, {
      requestId: req.requestId,
      deviceId: res.device!.name.slice("devices/".length),
      certificatePem: res.certificate!.certificatePem,
      caCertificatePem: res.caCertificatePem,
    });
  } catch (err) {
    if (!(err instanceof TetherError)) log.error({ err, templateId }, "mqtt provisioning failed");
    return create(ProvisioningResponseSchema, { requestId: req.requestId, error: err instanceof TetherError ? `${err.code}: ${err.message}` : "INTERNAL: internal error" });
  }
}
