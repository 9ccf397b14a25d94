import type { FirmwareRecord } from "../firmware/firmware-record.js";

/** Firmware metadata and bytes in the database (chunk rows: every replica can serve every image). */
export interface FirmwareRepository {
  /** Stores a new UPLOADING firmware; AlreadyExistsError naming the id, or the kind's version when that is taken. */
  insert(r: FirmwareRecord): Promise<FirmwareRecord>;
  get(id: string): Promise<FirmwareRecord | undefined>;
  /** In id order after `afterId`, of `kind` when given. */
  list(q: { kind?: string; afterId?: string; limit: number }): Promise<FirmwareRecord[]>;
  /**
   * Appends `data` at `offset` under the firmware's row lock, if the firmware is UPLOADING and
   * `offset` is the size received so far and the result stays within `maxBytes`; otherwise
   * stores nothing and says why. `retry` when the chunk is the exact last one again.
   */
  appendChunk(
    id: string,
    offset: number,
    data: Uint8Array,
    maxBytes: number,
  ): Promise<
    { ok: true; receivedBytes: number; retry: boolean } | { ok: false; reason: "missing" | "published" | "offset" | "too-large"; receivedBytes: number }
  >;
  /** The image's bytes from `start` (inclusive) to `end` (exclusive), a few chunk rows at a time. */
  read(id: string, start: number, end: number): AsyncIterable<Uint8Array>;
  /** Publishes an UPLOADING firmware of `revision` with its hash and signed manifest; undefined if it changed meanwhile. */
  publish(r: FirmwareRecord): Promise<FirmwareRecord | undefined>;
  /** Deletes it and its chunks; false if missing or `revision` (when given) no longer matches. */
  delete(id: string, revision?: number): Promise<boolean>;
}

/**
 * Something that may still need a firmware: a device reporting its version, and (with rollouts)
 * a rollout using it. DeleteFirmware asks each; the first that answers refuses the delete.
 */
export interface FirmwareReference {
  /** Why `f` is still needed (`devices/{device} reports running {kind} {version}`), or undefined. */
  find(f: FirmwareRecord): Promise<string | undefined>;
}

/** A public key manifests are signed with. */
export interface SigningKeyInfo {
  keyId: string;
  /** Raw Ed25519 public key, 32 bytes. */
  publicKey: Uint8Array;
  /** SubjectPublicKeyInfo PEM. */
  publicKeyPem: string;
  createTime: Date;
  primary: boolean;
}

/** Signs firmware manifests with Tether's Ed25519 key (the adapter keeps the private keys sealed). */
export interface ManifestSigner {
  /** The id of the key that `sign` will use now (the manifest names it before it is signed). */
  primaryKeyId(): Promise<string>;
  /** Signs `manifest` with key `keyId`; FailedPreconditionError if that key cannot be opened. */
  sign(keyId: string, manifest: Uint8Array): Promise<Uint8Array>;
  /** Every key, newest first; the first is primary. */
  keys(): Promise<SigningKeyInfo[]>;
  /** Makes a new primary key. */
  rotate(): Promise<SigningKeyInfo>;
}
