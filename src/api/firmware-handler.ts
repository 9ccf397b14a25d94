import { create } from "@bufbuild/protobuf";
import { EmptySchema } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { FirmwareService as FirmwareServiceDesc } from "../../gen/tether/v1/firmware_service_pb.js";
import type { FirmwareService } from "../core/firmware/firmware-service.js";
import { accessOf } from "./auth.js";

/** FirmwareService over Connect/gRPC: a thin shell; validation and rights live in the core. */
export function firmwareHandler(firmware: FirmwareService): ServiceImpl<typeof FirmwareServiceDesc> {
  return {
    beginFirmwareUpload: (req, ctx) => firmware.beginFirmwareUpload(accessOf(ctx), req),
    uploadFirmwareChunk: (req, ctx) => firmware.uploadFirmwareChunk(accessOf(ctx), req),
    commitFirmwareUpload: (req, ctx) => firmware.commitFirmwareUpload(accessOf(ctx), req),
    getFirmware: (req, ctx) => firmware.getFirmware(accessOf(ctx), req.name),
    listFirmwares: (req, ctx) => firmware.listFirmwares(accessOf(ctx), req),
    async deleteFirmware(req, ctx) {
      await firmware.deleteFirmware(accessOf(ctx), req);
      return create(EmptySchema);
    },
    getFirmwareSigningKeys: (_req, ctx) => firmware.getFirmwareSigningKeys(accessOf(ctx)),
    rotateFirmwareSigningKey: (_req, ctx) => firmware.rotateFirmwareSigningKey(accessOf(ctx)),
  };
}
