import { createHash, generateKeyPairSync, sign } from "node:crypto";
import { fromBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { ProductKind } from "../../gen/tether/v1/device_pb.js";
import { FirmwareManifestSchema } from "../../gen/tether/v1/firmware_pb.js";
import { wantedRange } from "../../src/api/firmware-download-route.js";
import { encodeManifest, type FirmwareRecord } from "../../src/core/firmware/firmware-record.js";
import { isSemver } from "../../src/core/semver.js";
import { firmwareKeyId, rawEd25519 } from "../../src/firmware/ed25519-signer.js";
import { loadEd25519PublicKey, verifyFirmware } from "../../src/firmware/verify.js";

// Precedence is tested with the fleet query (device-filter.test.ts), against the SQL function too.
describe("semantic versions", () => {
  it.each(["1.2.0", "0.0.1", "10.20.30", "1.0.0-rc.1", "1.0.0-alpha.beta-2", "1.0.0+build.7", "2.0.0-rc.1+sha.5114f85"])("accepts %s", (v) =>
    expect(isSemver(v)).toBe(true),
  );
  it.each(["", "1", "1.2", "v1.2.0", "01.2.0", "1.2.0-", "1.2.0-01", "1.2.0+", "1.2.0 ", "1.2.0-rc..1", "1.2.x"])("refuses %j", (v) =>
    expect(isSemver(v)).toBe(false),
  );
});

describe("firmware manifests", () => {
  const record: FirmwareRecord = {
    id: "led-1-2-0",
    kind: "led",
    version: "1.2.0",
    releaseNotes: "",
    hardwareLabels: ["rev-b"],
    state: "UPLOADING",
    sizeBytes: 11,
    sha256: "",
    signingKeyId: "",
    creator: "users/admin",
    createTime: new Date(0),
    revision: 3,
  };
  const bytes = Buffer.from("hello world");
  const digest = createHash("sha256").update(bytes).digest();
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const keyId = firmwareKeyId(rawEd25519(publicKey));
  const when = new Date("2025-01-02T03:04:05Z");

  it("encodes the same record to the same bytes, with every field the device checks", () => {
    const a = encodeManifest(record, digest, keyId, when);
    expect(Buffer.from(encodeManifest({ ...record }, digest, keyId, when)).equals(Buffer.from(a))).toBe(true);
    expect(fromBinary(FirmwareManifestSchema, a)).toMatchObject({
      firmware: "firmwares/led-1-2-0",
      kind: ProductKind.LED,
      version: "1.2.0",
      sizeBytes: 11n,
      hardwareLabels: ["rev-b"],
      signingKeyId: keyId,
    });
  });

  it("verifies with the right key and image; names what is wrong otherwise", () => {
    const m = encodeManifest(record, digest, keyId, when);
    const sig = sign(null, m, privateKey);
    const keys = [loadEd25519PublicKey(rawEd25519(publicKey))];
    expect(verifyFirmware({ size: 11, sha256: digest }, m, sig, keys).ok).toBe(true);
    const other = loadEd25519PublicKey(rawEd25519(generateKeyPairSync("ed25519").publicKey));
    expect(verifyFirmware({ size: 11, sha256: digest }, m, sig, [other])).toMatchObject({
      ok: false,
      reason: expect.stringContaining("signature does not verify"),
    });
    const tampered = Buffer.from(m);
    tampered[5] = tampered[5]! ^ 1;
    expect(verifyFirmware({ size: 11, sha256: digest }, tampered, sig, keys).ok).toBe(false);
    expect(verifyFirmware({ size: 12, sha256: digest }, m, sig, keys)).toMatchObject({ ok: false, reason: expect.stringContaining("12 bytes") });
    const flipped = createHash("sha256").update("hello worle").digest();
    expect(verifyFirmware({ size: 11, sha256: flipped }, m, sig, keys)).toMatchObject({ ok: false, reason: expect.stringContaining("not the signed image") });
  });
});

describe("download ranges", () => {
  const r = (range?: string, ifRange?: string) => wantedRange({ headers: { range, "if-range": ifRange } }, '"abc"', 1000);
  it("reads one byte range, a suffix, an open end; ignores what it cannot serve as a range", () => {
    expect(r()).toBeUndefined();
    expect(r("bytes=0-")).toEqual([0, 1000]);
    expect(r("bytes=500-")).toEqual([500, 1000]);
    expect(r("bytes=10-19")).toEqual([10, 20]);
    expect(r("bytes=990-5000")).toEqual([990, 1000]);
    expect(r("bytes=-100")).toEqual([900, 1000]);
    expect(r("bytes=-5000")).toEqual([0, 1000]);
    expect(r("bytes=1000-")).toBe("unsatisfiable");
    expect(r("bytes=-0")).toBe("unsatisfiable");
    expect(r("bytes=0-1,5-6")).toBeUndefined();
    expect(r("items=0-1")).toBeUndefined();
    expect(r("bytes=20-10")).toBeUndefined();
    expect(r("bytes=500-", '"abc"')).toEqual([500, 1000]);
    expect(r("bytes=500-", '"old"')).toBeUndefined();
  });
});
