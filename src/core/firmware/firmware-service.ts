import { createHash, randomBytes } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Firmware, FirmwareSigningKey } from "../../../gen/tether/v1/firmware_pb.js";
import { FirmwareSigningKeySchema } from "../../../gen/tether/v1/firmware_pb.js";
import type {
  BeginFirmwareUploadRequest,
  CommitFirmwareUploadRequest,
  DeleteFirmwareRequest,
  FirmwareSigningKeys,
  ListFirmwaresRequest,
  ListFirmwaresResponse,
  UploadFirmwareChunkRequest,
  UploadFirmwareChunkResponse,
} from "../../../gen/tether/v1/firmware_service_pb.js";
import { FirmwareSigningKeysSchema } from "../../../gen/tether/v1/firmware_service_pb.js";
import { ProductKind } from "../../../gen/tether/v1/device_pb.js";
import { type Access, actorOf, requireAdmin } from "../access/access.js";
import type { Clock } from "../clock.js";
import { AbortedError, FailedPreconditionError, InvalidArgumentError, NotFoundError } from "../errors.js";
import { decodePageToken, encodePageToken, resolvePageSize } from "../page-token.js";
import type { FirmwareReference, FirmwareRepository, ManifestSigner, SigningKeyInfo } from "../ports/firmware.js";
import { kindNameList } from "../products/index.js";
import {
  encodeManifest,
  FIRMWARE_ID,
  type FirmwareRecord,
  firmwareEtag,
  firmwareName,
  kindNameOf,
  parseFirmwareName,
  toFirmwareProto,
} from "./firmware-record.js";
import { validateFirmwareMetadata } from "./firmware-validation.js";

export interface FirmwareServiceDeps {
  firmwares: FirmwareRepository;
  signer: ManifestSigner;
  /** What may still need a firmware (devices running it; rollouts later): each can refuse a delete. */
  references: FirmwareReference[];
  clock: Clock;
  /** Largest image accepted, bytes (TETHER_FIRMWARE_MAX_BYTES). */
  maxBytes: number;
}

export type FirmwareService = ReturnType<typeof createFirmwareService>;

/** Largest chunk per UploadFirmwareChunk: fits the default request limit (4 MiB) even as Connect JSON (base64). */
export const MAX_CHUNK_BYTES = 1024 * 1024;

/**
 * The FirmwareService use cases. Uploading, deleting and key rotation need an admin (an image
 * runs on every device of its kind once rolled out); reads need only a signed-in caller.
 */
export function createFirmwareService({ firmwares, signer, references, clock, maxBytes }: FirmwareServiceDeps) {
  async function load(name: string, field = "name"): Promise<FirmwareRecord> {
    const id = parseFirmwareName(name, field);
    const r = await firmwares.get(id);
    if (!r) throw new NotFoundError(firmwareName(id));
    return r;
  }

  /** SHA-256 of the stored bytes, streamed a few chunks at a time (never the whole image in memory). */
  async function digest(r: FirmwareRecord): Promise<Buffer> {
    const h = createHash("sha256");
    for await (const part of firmwares.read(r.id, 0, r.sizeBytes)) h.update(part);
    return h.digest();
  }

  return {
    async beginFirmwareUpload(access: Access, req: BeginFirmwareUploadRequest): Promise<Firmware> {
      requireAdmin(access, "uploading firmware");
      const meta = validateFirmwareMetadata(req.firmware, req.firmwareId);
      const r: FirmwareRecord = {
        id: req.firmwareId || `${meta.kind.replaceAll("_", "-")}-${randomBytes(4).toString("hex")}`,
        kind: meta.kind,
        version: meta.version,
        releaseNotes: meta.releaseNotes,
        hardwareLabels: meta.hardwareLabels,
        state: "UPLOADING",
        sizeBytes: 0,
        sha256: "",
        signingKeyId: "",
        creator: actorOf(access),
        createTime: clock.now(),
        revision: 1,
      };
      return toFirmwareProto(await firmwares.insert(r));
    },

    async uploadFirmwareChunk(access: Access, req: UploadFirmwareChunkRequest): Promise<UploadFirmwareChunkResponse> {
      requireAdmin(access, "uploading firmware");
      const id = parseFirmwareName(req.name);
      if (req.offset < 0n) throw InvalidArgumentError.field("offset", "must not be negative");
      if (req.data.length === 0) throw InvalidArgumentError.field("data", "is required (1 B to 1 MiB)");
      if (req.data.length > MAX_CHUNK_BYTES)
        throw InvalidArgumentError.field("data", `is ${req.data.length} bytes; a chunk is at most ${MAX_CHUNK_BYTES} (1 MiB)`);
      const offset = Number(req.offset);
      const r = await firmwares.appendChunk(id, offset, req.data, maxBytes);
      if (r.ok) return { $typeName: "tether.v1.UploadFirmwareChunkResponse", receivedBytes: BigInt(r.receivedBytes) };
      switch (r.reason) {
        case "missing":
          throw new NotFoundError(firmwareName(id));
        case "published":
          throw new FailedPreconditionError(`${firmwareName(id)} is published: its bytes cannot change`);
        case "offset":
          throw InvalidArgumentError.field(
            "offset",
            `is ${offset} but ${r.receivedBytes} bytes have been received: send the chunk that starts at ${r.receivedBytes} (chunks go in order, without gaps or overlaps)`,
          );
        case "too-large":
          throw InvalidArgumentError.field(
            "data",
            `would make the image ${offset + req.data.length} bytes, over the limit of ${maxBytes} bytes (TETHER_FIRMWARE_MAX_BYTES); nothing of this chunk was stored`,
          );
      }
    },

    async commitFirmwareUpload(access: Access, req: CommitFirmwareUploadRequest): Promise<Firmware> {
      requireAdmin(access, "uploading firmware");
      const expected = req.sha256.toLowerCase();
      if (expected !== "" && !/^[0-9a-f]{64}$/.test(expected)) throw InvalidArgumentError.field("sha256", "must be 64 hex digits (or empty)");
      const r = await load(req.name);
      if (r.state === "PUBLISHED") {
        if (expected !== "" && expected !== r.sha256) throw InvalidArgumentError.field("sha256", `does not match the published image's SHA-256 ${r.sha256}`);
        return toFirmwareProto(r);
      }
      if (r.sizeBytes === 0) throw new FailedPreconditionError(`${firmwareName(r.id)} has no bytes yet: upload its chunks first`);
      const sha = await digest(r);
      const hex = sha.toString("hex");
      if (expected !== "" && expected !== hex) {
        throw InvalidArgumentError.field(
          "sha256",
          `is ${expected} but the ${r.sizeBytes} bytes received hash to ${hex}: the upload stays open; delete it and upload again`,
        );
      }
      const publishTime = clock.now();
      const keyId = await signer.primaryKeyId();
      const manifest = encodeManifest(r, sha, keyId, publishTime);
      const signature = await signer.sign(keyId, manifest);
      const published = await firmwares.publish({
        ...r,
        state: "PUBLISHED",
        sha256: hex,
        manifest,
        manifestSignature: signature,
        signingKeyId: keyId,
        publishTime,
        revision: r.revision + 1,
      });
      if (!published) throw new AbortedError(`${firmwareName(r.id)} changed while it was being committed; read it and try again`);
      return toFirmwareProto(published);
    },

    async getFirmware(_access: Access, name: string): Promise<Firmware> {
      return toFirmwareProto(await load(name));
    },

    async listFirmwares(_access: Access, req: ListFirmwaresRequest): Promise<ListFirmwaresResponse> {
      const limit = resolvePageSize(req.pageSize);
      let kind: string | undefined;
      if (req.kind !== ProductKind.UNSPECIFIED) {
        kind = kindNameOf(req.kind);
        if (!kind) throw InvalidArgumentError.field("kind", `is not a known product kind (${kindNameList()})`);
      }
      const query = `firmwares:${kind ?? ""}`;
      const afterId = decodePageToken(req.pageToken, query);
      const rows = await firmwares.list({ kind, afterId, limit: limit + 1 });
      const page = rows.slice(0, limit);
      return {
        $typeName: "tether.v1.ListFirmwaresResponse",
        firmwares: page.map(toFirmwareProto),
        nextPageToken: rows.length > limit ? encodePageToken(page.at(-1)!.id, query) : "",
      };
    },

    async deleteFirmware(access: Access, req: DeleteFirmwareRequest): Promise<void> {
      requireAdmin(access, "deleting firmware");
      const r = await load(req.name);
      if (req.etag !== "" && req.etag !== firmwareEtag(r)) throw new AbortedError(`${firmwareName(r.id)} changed: its etag is ${firmwareEtag(r)}`);
      if (r.state === "PUBLISHED") {
        for (const ref of references) {
          const why = await ref.find(r);
          if (why) throw new FailedPreconditionError(`${firmwareName(r.id)} is still in use: ${why}`);
        }
      }
      // The revision guards against a commit that lands between the checks and the delete.
      if (!(await firmwares.delete(r.id, r.revision))) throw new AbortedError(`${firmwareName(r.id)} changed while it was being deleted; try again`);
    },

    async getFirmwareSigningKeys(_access: Access): Promise<FirmwareSigningKeys> {
      const keys = await signer.keys();
      return create(FirmwareSigningKeysSchema, { keys: keys.map(toKeyProto) });
    },

    async rotateFirmwareSigningKey(access: Access): Promise<FirmwareSigningKey> {
      requireAdmin(access, "rotating the firmware signing key");
      return toKeyProto(await signer.rotate());
    },

    /**
     * The published firmware `firmwareId` if device `device` (of kind `kind`) may download it:
     * only images of its own kind. Anything else is NOT_FOUND, so a device cannot probe what
     * other kinds' images exist.
     */
    async openForDevice(device: { id: string; kind: string }, firmwareId: string): Promise<FirmwareRecord> {
      const r = FIRMWARE_ID.test(firmwareId) ? await firmwares.get(firmwareId) : undefined;
      if (r?.state !== "PUBLISHED" || r.kind !== device.kind) throw new NotFoundError(firmwareName(firmwareId.slice(0, 63)));
      return r;
    },

    /** The image's bytes in [start, end), streamed from the chunk rows. */
    read: (r: FirmwareRecord, start: number, end: number) => firmwares.read(r.id, start, end),
  };
}

function toKeyProto(k: SigningKeyInfo): FirmwareSigningKey {
  return create(FirmwareSigningKeySchema, {
    keyId: k.keyId,
    publicKey: k.publicKey,
    publicKeyPem: k.publicKeyPem,
    createTime: timestampFromDate(k.createTime),
    primary: k.primary,
  });
}
