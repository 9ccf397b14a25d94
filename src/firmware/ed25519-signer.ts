import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, sign } from "node:crypto";
import type { TextSealer } from "../core/auth/key-sealing.js";
import type { Clock } from "../core/clock.js";
import { FailedPreconditionError } from "../core/errors.js";
import type { ManifestSigner, SigningKeyInfo } from "../core/ports/firmware.js";
import type { Logger } from "../log.js";
import type { FirmwareKeyStore, StoredFirmwareKey } from "../store/firmware-key-store.js";

/** The key id Tether gives an Ed25519 public key: `fwk-` + 16 hex digits of its SHA-256. */
export function firmwareKeyId(rawPublicKey: Uint8Array): string {
  return `fwk-${createHash("sha256").update(rawPublicKey).digest("hex").slice(0, 16)}`;
}

/** The raw 32-byte Ed25519 public key of a key object (the last 32 bytes of its DER SPKI). */
export function rawEd25519(publicKey: KeyObject): Uint8Array {
  const der = publicKey.export({ type: "spki", format: "der" });
  return new Uint8Array(der.subarray(der.length - 32));
}

/**
 * ManifestSigner with Ed25519 keys in `firmware_signing_keys`, shared by every replica. Private
 * keys are sealed with `sealer` (TETHER_SIGNING_KEY_SECRET, as the JWT keys and webhook secrets
 * are). With a secret set, a key is used and listed only if this secret sealed it and its
 * private half matches its public half: a row written by someone with database access (an
 * unsealed key, or one sealed with another secret) would let them forge manifests, so it is
 * ignored, and logged.
 */
export function createEd25519Signer(o: { keys: FirmwareKeyStore; sealer: TextSealer; sealed: boolean; clock: Clock; log: Logger }): ManifestSigner & {
  /** Makes the first key if there is no usable one (at start). */
  ensureKey(): Promise<void>;
} {
  const warned = new Set<string>();
  /** The stored keys this replica can use, newest first, with their private keys opened. */
  async function usable(): Promise<Array<StoredFirmwareKey & { key: KeyObject }>> {
    const out: Array<StoredFirmwareKey & { key: KeyObject }> = [];
    for (const k of await o.keys.list()) {
      const reason = check(k);
      if (typeof reason === "string") {
        if (!warned.has(k.keyId)) o.log.warn({ keyId: k.keyId, reason }, "firmware signing key ignored");
        warned.add(k.keyId);
        continue;
      }
      out.push({ ...k, key: reason });
    }
    return out;
  }
  function check(k: StoredFirmwareKey): KeyObject | string {
    if (o.sealed && !k.privateKey.startsWith("sealed:")) return "stored unsealed although TETHER_SIGNING_KEY_SECRET is set";
    const pem = o.sealer.open(k.privateKey);
    if (pem === undefined) return "not sealed with this TETHER_SIGNING_KEY_SECRET";
    try {
      const key = createPrivateKey(pem);
      const pub = rawEd25519(createPublicKey(key));
      if (Buffer.compare(Buffer.from(pub), Buffer.from(k.publicKey)) !== 0 || firmwareKeyId(pub) !== k.keyId)
        return "its public key is not the one sealed with it";
      return key;
    } catch {
      return "its private key cannot be read";
    }
  }
  async function make(): Promise<SigningKeyInfo> {
    const { publicKey, privateKey } = generateKeyPairSync("ed25519");
    const raw = rawEd25519(publicKey);
    const stored: StoredFirmwareKey = {
      keyId: firmwareKeyId(raw),
      publicKey: raw,
      privateKey: o.sealer.seal(privateKey.export({ type: "pkcs8", format: "pem" }).toString()),
      createTime: o.clock.now(),
    };
    await o.keys.insert(stored);
    o.log.info({ keyId: stored.keyId }, "firmware signing key created");
    return info(stored, true);
  }
  return {
    async ensureKey() {
      if ((await usable()).length === 0) await make();
    },
    async primaryKeyId() {
      const [k] = await usable();
      if (!k) throw new FailedPreconditionError("no usable firmware signing key: rotate one (RotateFirmwareSigningKey)");
      return k.keyId;
    },
    async sign(keyId, manifest) {
      const k = (await usable()).find((x) => x.keyId === keyId);
      if (!k) throw new FailedPreconditionError(`firmware signing key ${keyId} cannot be used on this replica`);
      return new Uint8Array(sign(null, manifest, k.key));
    },
    async keys() {
      return (await usable()).map((k, i) => info(k, i === 0));
    },
    rotate: make,
  };
}

function info(k: StoredFirmwareKey, primary: boolean): SigningKeyInfo {
  const pem = createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, Buffer.from(k.publicKey)]), format: "der", type: "spki" })
    .export({ type: "spki", format: "pem" })
    .toString();
  return { keyId: k.keyId, publicKey: k.publicKey, publicKeyPem: pem, createTime: k.createTime, primary };
}

/** DER SubjectPublicKeyInfo header of an Ed25519 key (RFC 8410): followed by the 32 raw bytes. */
export const ED25519_SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");
