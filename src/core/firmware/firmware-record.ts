import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type Firmware, Firmware_State, FirmwareManifestSchema, FirmwareSchema } from "../../../gen/tether/v1/firmware_pb.js";
import { ProductKind } from "../../../gen/tether/v1/device_pb.js";
import { truncate } from "../devices/device-name.js";
import { InvalidArgumentError } from "../errors.js";
import { PRODUCTS, productByKindName } from "../products/index.js";

/** A firmware image as stored (without its bytes). */
export interface FirmwareRecord {
  id: string;
  /** Product kind name, as devices are stored (`Product.kindName`). */
  kind: string;
  version: string;
  releaseNotes: string;
  hardwareLabels: string[];
  state: "UPLOADING" | "PUBLISHED";
  sizeBytes: number;
  /** Lowercase hex; "" until published. */
  sha256: string;
  manifest?: Uint8Array;
  manifestSignature?: Uint8Array;
  signingKeyId: string;
  creator: string;
  createTime: Date;
  publishTime?: Date;
  revision: number;
}

export const FIRMWARE_ID = /^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export const firmwareName = (id: string) => `firmwares/${id}`;

/** The id of `firmwares/{firmware}`, or INVALID_ARGUMENT naming `field`. */
export function parseFirmwareName(name: string, field = "name"): string {
  const m = /^firmwares\/([^/]+)$/.exec(name);
  if (!m || !FIRMWARE_ID.test(m[1]!)) throw InvalidArgumentError.field(field, `"${truncate(name)}" is not a firmware name: expected firmwares/{firmware}`);
  return m[1]!;
}

export const firmwareEtag = (r: FirmwareRecord) => `"${r.revision}"`;

/** The product kind name of a `ProductKind`, or undefined for unspecified or unknown values. */
export function kindNameOf(kind: ProductKind): string | undefined {
  return PRODUCTS.find((p) => p.productKind === kind)?.kindName;
}

function productKindOf(kindName: string): ProductKind {
  return productByKindName(kindName)?.productKind ?? ProductKind.UNSPECIFIED;
}

export function toFirmwareProto(r: FirmwareRecord): Firmware {
  return create(FirmwareSchema, {
    name: firmwareName(r.id),
    kind: productKindOf(r.kind),
    version: r.version,
    releaseNotes: r.releaseNotes,
    hardwareLabels: r.hardwareLabels,
    state: r.state === "PUBLISHED" ? Firmware_State.PUBLISHED : Firmware_State.UPLOADING,
    sizeBytes: BigInt(r.sizeBytes),
    sha256: r.sha256,
    manifest: r.manifest ?? new Uint8Array(),
    manifestSignature: r.manifestSignature ?? new Uint8Array(),
    signingKeyId: r.signingKeyId,
    createTime: timestampFromDate(r.createTime),
    publishTime: r.publishTime ? timestampFromDate(r.publishTime) : undefined,
    etag: firmwareEtag(r),
    creator: r.creator,
  });
}

/**
 * The manifest bytes for a firmware about to be published: `tether.v1.FirmwareManifest` in
 * binary protobuf. protobuf-es writes fields in number order and this message has no maps, so
 * the same record always gives the same bytes; the signature covers exactly these.
 */
export function encodeManifest(r: FirmwareRecord, sha256: Uint8Array, keyId: string, publishTime: Date): Uint8Array {
  return toBinary(
    FirmwareManifestSchema,
    create(FirmwareManifestSchema, {
      firmware: firmwareName(r.id),
      kind: productKindOf(r.kind),
      version: r.version,
      sizeBytes: BigInt(r.sizeBytes),
      sha256,
      hardwareLabels: r.hardwareLabels,
      signingKeyId: keyId,
      publishTime: timestampFromDate(publishTime),
    }),
  );
}
