import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { ProductKind } from "../../gen/tether/v1/device_pb.js";
import { FirmwareService } from "../../gen/tether/v1/firmware_service_pb.js";
import { ensureDevPki } from "../../src/pki/dev-pki.js";
import { migrate } from "../../src/store/migrate.js";
import { httpsGet, image, sha256, upload } from "../helpers/firmware.js";
import { devicePem } from "../helpers/http-device.js";
import { freshDatabase } from "../helpers/postgres.js";
import { connectClient, startTestStack, type TestStack } from "../helpers/stack.js";

const log = pino({ level: "silent" });
const MiB = 1024 * 1024;
let db: Awaited<ReturnType<typeof freshDatabase>>;
let pkiDir: string;
let a: TestStack;
let b: TestStack;
beforeAll(async () => {
  db = await freshDatabase("tether_firmware");
  await migrate(db.url, log);
  pkiDir = await mkdtemp(path.join(tmpdir(), "tether-fw-pki-"));
  await ensureDevPki(pkiDir);
  // Two replicas on one database and one PKI: what one stores, the other serves.
  const env = { DATABASE_URL: db.url, TETHER_CERTS_DIR: pkiDir };
  a = await startTestStack(env);
  b = await startTestStack(env);
}, 90_000);
afterAll(async () => {
  await a?.cleanup();
  await b?.cleanup();
  await db?.drop();
  await rm(pkiDir, { recursive: true, force: true });
});

describe("firmware on a real PostgreSQL", () => {
  it("an image uploaded through one replica downloads, whole and by range, from the other, signed with a key both share", async () => {
    const bytes = image(3 * MiB + 777, 11);
    await connectClient(a, DeviceService, "grpc").createDevice({ deviceId: "pg-led", device: { kind: { case: "led", value: {} } } });
    const f = await upload(connectClient(a, FirmwareService, "grpc"), { kind: ProductKind.LED, version: "2.0.0", id: "pg-led-2" }, bytes);
    expect(f.sha256).toBe(sha256(bytes));
    // One signing key for the fleet (not one per replica), listed the same by both.
    const keysA = await connectClient(a, FirmwareService, "grpc").getFirmwareSigningKeys({});
    const keysB = await connectClient(b, FirmwareService, "grpc").getFirmwareSigningKeys({});
    expect(keysB.keys.map((k) => k.keyId)).toEqual(keysA.keys.map((k) => k.keyId));
    expect(keysA.keys[0]!.keyId).toBe(f.signingKeyId);

    const pem = await devicePem(b, "pg-led");
    const whole = await httpsGet(b, "/firmwares/pg-led-2/image", pem);
    expect([whole.status, sha256(whole.body)]).toEqual([200, f.sha256]);
    const from = 2 * MiB - 5;
    const rest = await httpsGet(b, "/firmwares/pg-led-2/image", pem, { range: `bytes=${from}-`, "if-range": `"${f.sha256}"` });
    expect(rest.status).toBe(206);
    expect(sha256(Buffer.concat([bytes.subarray(0, from), rest.body]))).toBe(f.sha256);
  });
});
