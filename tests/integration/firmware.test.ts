import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { ProductKind } from "../../gen/tether/v1/device_pb.js";
import { Firmware_State } from "../../gen/tether/v1/firmware_pb.js";
import { FirmwareService } from "../../gen/tether/v1/firmware_service_pb.js";
import { loadEd25519PublicKey, verifyFirmware } from "../../src/firmware/verify.js";
import { bearerClient, userToken } from "../helpers/auth.js";
import { eventually, rawDevice } from "../helpers/devices.js";
import { httpsGet, image, sha256, upload } from "../helpers/firmware.js";
import { devicePem } from "../helpers/http-device.js";
import { connectClient, type Pem, startTestStack, type TestStack } from "../helpers/stack.js";

const MiB = 1024 * 1024;
let s: TestStack;
let alice: string;
const fw = () => connectClient(s, FirmwareService, "grpc");
const devices = () => connectClient(s, DeviceService, "grpc");
const led = { kind: { case: "led" as const, value: {} } };

/** The refusal of `p`: its code, message and field violations' fields. */
async function refusal(p: Promise<unknown>): Promise<{ code: Code; message: string }> {
  try {
    await p;
  } catch (err) {
    const e = ConnectError.from(err);
    return { code: e.code, message: e.rawMessage };
  }
  throw new Error("expected a refusal");
}

beforeAll(async () => {
  // Room for a 2.5 MiB image in three chunk rows; a fourth 1 MiB chunk crosses the limit.
  s = await startTestStack({ TETHER_FIRMWARE_MAX_BYTES: String(3 * MiB) });
  alice = await userToken(s, "alice", "alice-password-1");
  await devices().createDevice({ deviceId: "fw-led", device: led });
  await devices().createDevice({ deviceId: "fw-coffee", device: { kind: { case: "coffeeMachine", value: {} } } });
}, 60_000);
afterAll(async () => {
  await s?.cleanup();
});

describe("firmware artifacts", () => {
  const bytes = image(2.5 * MiB);
  let name = "";

  it("uploads in chunks, hashes, signs and publishes; get and list show it", async () => {
    const f = await upload(fw(), { kind: ProductKind.LED, version: "1.2.0", id: "led-1-2-0", hardwareLabels: ["rev-b"] }, bytes);
    name = f.name;
    expect(f).toMatchObject({ name: "firmwares/led-1-2-0", state: Firmware_State.PUBLISHED, sizeBytes: BigInt(bytes.length), sha256: sha256(bytes) });
    expect(f.manifestSignature.length).toBe(64);
    const keys = await fw().getFirmwareSigningKeys({});
    expect(keys.keys[0]).toMatchObject({ keyId: f.signingKeyId, primary: true });
    const ok = verifyFirmware({ size: bytes.length, sha256: Buffer.from(f.sha256, "hex") }, f.manifest, f.manifestSignature, [
      loadEd25519PublicKey(keys.keys[0]!.publicKeyPem),
    ]);
    expect(ok.ok && ok.manifest).toMatchObject({ firmware: name, kind: ProductKind.LED, version: "1.2.0", hardwareLabels: ["rev-b"] });
    expect(await fw().getFirmware({ name })).toMatchObject({ sha256: f.sha256, etag: f.etag });
    // Any signed-in user reads; filtering by kind.
    const asAlice = bearerClient(s, FirmwareService, alice);
    expect((await asAlice.listFirmwares({ kind: ProductKind.LED })).firmwares.map((x) => x.name)).toEqual([name]);
    expect((await asAlice.listFirmwares({ kind: ProductKind.COFFEE_MACHINE })).firmwares).toEqual([]);
    // Committing again changes nothing; more bytes are refused.
    expect((await fw().commitFirmwareUpload({ name })).etag).toBe(f.etag);
    expect(await refusal(fw().uploadFirmwareChunk({ name, offset: BigInt(bytes.length), data: new Uint8Array(1) }))).toMatchObject({
      code: Code.FailedPrecondition,
    });
  });

  it("refuses bad metadata with field-level reasons, and a duplicate version", async () => {
    const bad = await refusal(fw().beginFirmwareUpload({ firmware: { kind: ProductKind.UNSPECIFIED, version: "v1.0" } }));
    expect(bad.code).toBe(Code.InvalidArgument);
    expect(bad.message).toContain("firmware.kind");
    expect(bad.message).toContain('firmware.version: "v1.0" is not a semantic version');
    expect(await refusal(fw().beginFirmwareUpload({ firmware: { kind: 99 as ProductKind, version: "1.0.0" } }))).toMatchObject({
      code: Code.InvalidArgument,
    });
    const dup = await refusal(fw().beginFirmwareUpload({ firmware: { kind: ProductKind.LED, version: "1.2.0" } }));
    expect(dup).toMatchObject({ code: Code.AlreadyExists });
    expect(dup.message).toContain("led firmware version 1.2.0 (firmwares/led-1-2-0)");
    // The same version for another kind is another image.
    const other = await fw().beginFirmwareUpload({ firmware: { kind: ProductKind.COFFEE_MACHINE, version: "1.2.0" } });
    expect(other.name).toMatch(/^firmwares\/coffee-machine-[0-9a-f]{8}$/);
    await fw().deleteFirmware({ name: other.name });
  });

  it("only admins upload", async () => {
    const asAlice = bearerClient(s, FirmwareService, alice);
    expect(await refusal(asAlice.beginFirmwareUpload({ firmware: { kind: ProductKind.LED, version: "9.0.0" } }))).toMatchObject({
      code: Code.PermissionDenied,
    });
    expect(await refusal(asAlice.rotateFirmwareSigningKey({}))).toMatchObject({ code: Code.PermissionDenied });
  });

  it("refuses gaps and overlaps, accepts the last chunk again, and a wrong SHA-256 leaves the upload open", async () => {
    const b = await fw().beginFirmwareUpload({ firmwareId: "chunks", firmware: { kind: ProductKind.LED, version: "0.1.0" } });
    const one = image(1000, 2);
    expect((await fw().uploadFirmwareChunk({ name: b.name, offset: 0n, data: one.subarray(0, 600) })).receivedBytes).toBe(600n);
    const gap = await refusal(fw().uploadFirmwareChunk({ name: b.name, offset: 700n, data: one.subarray(700) }));
    expect(gap).toMatchObject({ code: Code.InvalidArgument });
    expect(gap.message).toContain("offset: is 700 but 600 bytes have been received");
    expect(await refusal(fw().uploadFirmwareChunk({ name: b.name, offset: 100n, data: one.subarray(100) }))).toMatchObject({ code: Code.InvalidArgument });
    // A retry of the chunk just stored (its answer lost) is harmless.
    expect((await fw().uploadFirmwareChunk({ name: b.name, offset: 0n, data: one.subarray(0, 600) })).receivedBytes).toBe(600n);
    expect((await fw().uploadFirmwareChunk({ name: b.name, offset: 600n, data: one.subarray(600) })).receivedBytes).toBe(1000n);
    const wrong = await refusal(fw().commitFirmwareUpload({ name: b.name, sha256: sha256(image(1000, 3)) }));
    expect(wrong).toMatchObject({ code: Code.InvalidArgument });
    expect(wrong.message).toContain(`sha256: is ${sha256(image(1000, 3))} but the 1000 bytes received hash to ${sha256(one)}`);
    expect((await fw().getFirmware({ name: b.name })).state).toBe(Firmware_State.UPLOADING);
    expect((await fw().commitFirmwareUpload({ name: b.name, sha256: sha256(one) })).state).toBe(Firmware_State.PUBLISHED);
  });

  it("refuses the chunk that crosses TETHER_FIRMWARE_MAX_BYTES, storing none of it", async () => {
    const b = await fw().beginFirmwareUpload({ firmwareId: "too-big", firmware: { kind: ProductKind.LED, version: "0.2.0" } });
    const chunk = image(MiB, 4);
    for (let i = 0; i < 3; i++) await fw().uploadFirmwareChunk({ name: b.name, offset: BigInt(i * MiB), data: chunk });
    const over = await refusal(fw().uploadFirmwareChunk({ name: b.name, offset: BigInt(3 * MiB), data: chunk.subarray(0, 1) }));
    expect(over).toMatchObject({ code: Code.InvalidArgument });
    expect(over.message).toContain(`data: would make the image ${3 * MiB + 1} bytes, over the limit of ${3 * MiB} bytes (TETHER_FIRMWARE_MAX_BYTES)`);
    expect((await fw().getFirmware({ name: b.name })).sizeBytes).toBe(BigInt(3 * MiB));
    // An abandoned upload is deleted like any firmware.
    await fw().deleteFirmware({ name: b.name });
    expect(await refusal(fw().getFirmware({ name: b.name }))).toMatchObject({ code: Code.NotFound });
  });

  it("rotates the signing key: new manifests use it, old ones still verify with the listed keys", async () => {
    const before = await fw().getFirmware({ name });
    const rotated = await fw().rotateFirmwareSigningKey({});
    expect(rotated.primary).toBe(true);
    expect(rotated.keyId).not.toBe(before.signingKeyId);
    const b = image(5000, 5);
    const next = await upload(fw(), { kind: ProductKind.LED, version: "1.3.0" }, b);
    expect(next.signingKeyId).toBe(rotated.keyId);
    const listed = (await fw().getFirmwareSigningKeys({})).keys;
    expect(listed.map((k) => [k.keyId, k.primary])).toEqual([
      [rotated.keyId, true],
      [before.signingKeyId, false],
    ]);
    const all = listed.map((k) => loadEd25519PublicKey(k.publicKey));
    expect(verifyFirmware({ size: bytes.length, sha256: Buffer.from(before.sha256, "hex") }, before.manifest, before.manifestSignature, all).ok).toBe(true);
    expect(verifyFirmware({ size: b.length, sha256: Buffer.from(next.sha256, "hex") }, next.manifest, next.manifestSignature, all).ok).toBe(true);
    // The new key alone does not verify the old manifest.
    expect(verifyFirmware({ size: bytes.length, sha256: Buffer.from(before.sha256, "hex") }, before.manifest, before.manifestSignature, [all[0]!]).ok).toBe(
      false,
    );
    await fw().deleteFirmware({ name: next.name });
  });
});

describe("device download over HTTPS", () => {
  const bytes = image(2.5 * MiB);
  const path = "/firmwares/led-1-2-0/image";
  let ledPem: Pem;

  beforeAll(async () => {
    ledPem = await devicePem(s, "fw-led");
  });

  it("serves the whole image to a device of its kind, with ETag = SHA-256", async () => {
    const r = await httpsGet(s, path, ledPem);
    expect(r.status).toBe(200);
    expect(r.headers.etag).toBe(`"${sha256(bytes)}"`);
    expect(r.headers["accept-ranges"]).toBe("bytes");
    expect(r.body.equals(bytes)).toBe(true);
  });

  it("resumes a cut download with a range request from the middle: the bytes join up and hash right", async () => {
    const cut = await httpsGet(s, path, ledPem, {}, { abortAfterBytes: 1.3 * MiB });
    const have = cut.body;
    expect(have.length).toBeGreaterThan(0);
    expect(have.length).toBeLessThan(bytes.length);
    const etag = String(cut.headers.etag);
    const rest = await httpsGet(s, path, ledPem, { range: `bytes=${have.length}-`, "if-range": etag });
    expect(rest.status).toBe(206);
    expect(rest.headers["content-range"]).toBe(`bytes ${have.length}-${bytes.length - 1}/${bytes.length}`);
    const joined = Buffer.concat([have, rest.body]);
    expect(sha256(joined)).toBe(sha256(bytes));
    // A closed range inside one chunk row and across two; a suffix; past the end; a stale If-Range.
    const mid = await httpsGet(s, path, ledPem, { range: `bytes=${MiB - 10}-${MiB + 9}` });
    expect(mid.status).toBe(206);
    expect(mid.body.equals(bytes.subarray(MiB - 10, MiB + 10))).toBe(true);
    expect((await httpsGet(s, path, ledPem, { range: "bytes=-100" })).body.equals(bytes.subarray(bytes.length - 100))).toBe(true);
    const past = await httpsGet(s, path, ledPem, { range: `bytes=${bytes.length}-` });
    expect([past.status, past.headers["content-range"]]).toEqual([416, `bytes */${bytes.length}`]);
    const stale = await httpsGet(s, path, ledPem, { range: "bytes=100-", "if-range": '"0000"' });
    expect([stale.status, stale.body.length]).toEqual([200, bytes.length]);
  });

  it("refuses another kind's device, users and callers without a certificate", async () => {
    const other = await httpsGet(s, path, await devicePem(s, "fw-coffee"));
    expect(other.status).toBe(404);
    const user = await httpsGet(s, path, s.admin);
    expect(user.status).toBe(403);
    expect(user.body.toString()).toContain("firmware images are for devices");
    expect((await httpsGet(s, path, { ca: s.admin.ca }, { authorization: `Bearer ${alice}` })).status).toBe(401);
    expect((await httpsGet(s, path, { ca: s.admin.ca })).status).toBe(401);
    // An unfinished upload is not downloadable.
    await fw().beginFirmwareUpload({ firmwareId: "half", firmware: { kind: ProductKind.LED, version: "0.3.0" } });
    expect((await httpsGet(s, "/firmwares/half/image", ledPem)).status).toBe(404);
  });
});

describe("firmware in use", () => {
  it("the device's Hello over MQTT sets its firmware version, and then the image cannot be deleted", async () => {
    const dev = await rawDevice(s, "fw-led");
    try {
      await dev.send({ case: "hello", value: { firmwareVersion: "1.2.0", wantPendingTasks: true } });
      await eventually(async () => (await devices().getDevice({ name: "devices/fw-led" })).firmwareVersion === "1.2.0", 10_000, "the reported version");
    } finally {
      await dev.close();
    }
    const refused = await refusal(fw().deleteFirmware({ name: "firmwares/led-1-2-0" }));
    expect(refused).toMatchObject({ code: Code.FailedPrecondition });
    expect(refused.message).toContain("devices/fw-led reports running led 1.2.0");
    // Once the device moved on, the image can go.
    await devices().updateDevice({ device: { name: "devices/fw-led", firmwareVersion: "1.3.0", ...led }, updateMask: { paths: ["firmware_version"] } });
    await fw().deleteFirmware({ name: "firmwares/led-1-2-0" });
  });
});
