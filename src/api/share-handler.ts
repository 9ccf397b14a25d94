import { create } from "@bufbuild/protobuf";
import { EmptySchema } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { ShareService as ShareServiceDesc } from "../../gen/tether/v1/share_service_pb.js";
import type { ShareService } from "../core/access/share-service.js";
import { accessOf } from "./auth.js";

/** ShareService over Connect/gRPC. */
export function shareHandler(shares: ShareService): ServiceImpl<typeof ShareServiceDesc> {
  return {
    createGrant: (req, ctx) => shares.createGrant(accessOf(ctx), req.grant),
    listGrants: (req, ctx) => shares.listGrants(accessOf(ctx), req),
    async deleteGrant(req, ctx) {
      await shares.deleteGrant(accessOf(ctx), req.name);
      return create(EmptySchema);
    },
  };
}
