import { createHash, createPublicKey, verify } from "node:crypto";
import { fromBinary } from "@bufbuild/protobuf";
import { type FirmwareManifest, FirmwareManifestSchema } from "../../gen/tether/v1/firmware_pb.js";
import { ED25519_SPKI_PREFIX, firmwareKeyId } from "./ed25519-signer.js";

/** A public key to check manifests with: PEM (SPKI) or the raw 32 bytes. */
export function loadEd25519PublicKey(key: string | Uint8Array) {
  if (typeof key === "string") return createPublicKey(key);
  if (key.length !== 32) throw new Error(`a raw Ed25519 public key is 32 bytes, not ${key.length}`);
  return createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, Buffer.from(key)]), format: "der", type: "spki" });
}

export type VerifyResult = { ok: true; manifest: FirmwareManifest } | { ok: false; reason: string };

/**
 * Checks an image offline, as a device would: the signature over the manifest's exact bytes
 * with one of `keys` (the one the manifest names, if present), then the manifest's size and
 * SHA-256 against `image`. Nothing is trusted before the signature holds.
 */
export function verifyFirmware(
  image: { size: number; sha256: Uint8Array },
  manifestBytes: Uint8Array,
  signature: Uint8Array,
  keys: ReturnType<typeof loadEd25519PublicKey>[],
): VerifyResult {
  const good = keys.filter((k) => verify(null, manifestBytes, k, signature));
  if (good.length === 0) return { ok: false, reason: "the manifest's signature does not verify with the given key(s): not signed by this Tether, or altered" };
  let manifest: FirmwareManifest;
  try {
    manifest = fromBinary(FirmwareManifestSchema, manifestBytes);
  } catch {
    return { ok: false, reason: "the manifest is not a tether.v1.FirmwareManifest" };
  }
  const ids = good.map((k) => firmwareKeyId(new Uint8Array(k.export({ type: "spki", format: "der" }).subarray(-32))));
  if (manifest.signingKeyId !== "" && !ids.includes(manifest.signingKeyId)) {
    return { ok: false, reason: `the manifest names key ${manifest.signingKeyId}, but verified with ${ids.join(", ")}` };
  }
  if (BigInt(image.size) !== manifest.sizeBytes) return { ok: false, reason: `the file is ${image.size} bytes; the manifest says ${manifest.sizeBytes}` };
  if (Buffer.compare(Buffer.from(image.sha256), Buffer.from(manifest.sha256)) !== 0) {
    return {
      ok: false,
      reason: `the file's SHA-256 is ${Buffer.from(image.sha256).toString("hex")}; the manifest says ${Buffer.from(manifest.sha256).toString("hex")}: the file is not the signed image`,
    };
  }
  return { ok: true, manifest };
}

/** SHA-256 and size of a byte stream (a file read in pieces). */
export async function digestStream(parts: AsyncIterable<Uint8Array>): Promise<{ size: number; sha256: Uint8Array }> {
  const h = createHash("sha256");
  let size = 0;
  for await (const p of parts) {
    h.update(p);
    size += p.length;
  }
  return { size, sha256: new Uint8Array(h.digest()) };
}
