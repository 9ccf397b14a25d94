import { create } from "@bufbuild/protobuf";
import {
  type ProvisioningRequest,
  ProvisioningRequestSchema,
  type ProvisioningResponse,
  ProvisioningResponseSchema,
} from "../../../gen/tether/device/v1/provisioning_pb.js";
import { DEVICE_BOUNDS } from "../../protocol/device-bounds.js";
import { boundViolations, truncateUtf8 } from "../device-bounds.js";
import { TetherError } from "../errors.js";

const MAX_ERROR_BYTES = DEVICE_BOUNDS["tether.device.v1.ProvisioningResponse.error"]!.maxBytes!;
import type { CoreLogger } from "../log.js";
import type { ProvisioningService } from "./provisioning-service.js";

/**
 * Answers a provisioning request that arrived over MQTT: the same ProvisionDevice as the API, with
 * the template taken from the topic (which the broker only lets that template's claim use). A
 * refusal becomes the response's `error`, never a dropped message, so the device learns why.
 */
export async function answerProvisioning(
  service: ProvisioningService,
  templateId: string,
  req: ProvisioningRequest,
  log: CoreLogger,
): Promise<ProvisioningResponse> {
  // A request over a bound of the contract is refused with the field; its request_id is echoed
  // only when it is itself within bounds (the answer must fit the device's buffers too).
  const over = boundViolations(ProvisioningRequestSchema, req, 1);
  if (over.length > 0) {
    const requestId = over[0]!.field === "request_id" ? "" : req.requestId;
    return create(ProvisioningResponseSchema, {
      requestId,
      error: truncateUtf8(`INVALID_ARGUMENT: ${over[0]!.field}: ${over[0]!.description}`, MAX_ERROR_BYTES),
    });
  }
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
    return create(ProvisioningResponseSchema, {
      requestId: req.requestId,
      error: truncateUtf8(err instanceof TetherError ? `${err.code}: ${err.message}` : "INTERNAL: internal error", MAX_ERROR_BYTES),
    });
  }
}
