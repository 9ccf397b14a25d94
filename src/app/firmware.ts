import { createTextSealer } from "../core/auth/key-sealing.js";
import { createFirmwareService } from "../core/firmware/firmware-service.js";
import { productByCase } from "../core/products/index.js";
import { NotFoundError } from "../core/errors.js";
import { createEd25519Signer } from "../firmware/ed25519-signer.js";
import { createFirmwareKeyStore } from "../store/firmware-key-store.js";
import { createFirmwareStore, devicesRunningFirmware } from "../store/firmware-store.js";
import type { Infrastructure } from "./infrastructure.js";

/**
 * Firmware: images in chunk rows, manifests signed with Ed25519 keys sealed like the JWT keys
 * (`keySecret`: TETHER_SIGNING_KEY_SECRET or the embedded data directory's generated one), and
 * what the device download route needs. Deleting refuses while a device reports the version;
 * rollouts will add their own `FirmwareReference` to `references`.
 */
export async function createFirmware(x: Infrastructure, keySecret: string | undefined) {
  const store = createFirmwareStore(x.db.sql);
  const signer = createEd25519Signer({
    keys: createFirmwareKeyStore(x.db.sql),
    sealer: createTextSealer(keySecret, "firmware-signing-key"),
    sealed: keySecret !== undefined,
    clock: x.clock,
    log: x.log.child({ component: "firmware" }),
  });
  await signer.ensureKey();
  const firmware = createFirmwareService({
    firmwares: store,
    signer,
    references: [devicesRunningFirmware(x.db.sql)],
    clock: x.clock,
    maxBytes: x.config.firmware.maxBytes,
  });
  return {
    firmware,
    /** The published image `firmwareId` if device `deviceId` may download it (its own kind). */
    async openForDevice(deviceId: string, firmwareId: string) {
      const d = await x.stores.devices.get(deviceId);
      if (!d?.device.kind.case) throw new NotFoundError(`devices/${deviceId}`);
      return firmware.openForDevice({ id: deviceId, kind: productByCase(d.device.kind.case).kindName }, firmwareId);
    },
  };
}

export type Firmware = Awaited<ReturnType<typeof createFirmware>>;
