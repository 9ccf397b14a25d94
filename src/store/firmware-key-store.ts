import type { Sql } from "./database.js";
import { auditedChange } from "./transaction.js";

/** A firmware signing key as stored: the private half sealed (see src/firmware/ed25519-signer.ts). */
export interface StoredFirmwareKey {
  keyId: string;
  publicKey: Uint8Array;
  /** PKCS#8 PEM, sealed with TETHER_SIGNING_KEY_SECRET when one is set. */
  privateKey: string;
  createTime: Date;
}

/** `firmware_signing_keys`: every replica signs with the newest row, and lists them all. */
export function createFirmwareKeyStore(sql: Sql) {
  return {
    /** Every key, newest first. */
    async list(): Promise<StoredFirmwareKey[]> {
      const rows = await sql<{ key_id: string; public_key: Uint8Array; private_key: string; create_time: Date }[]>`
        SELECT * FROM firmware_signing_keys ORDER BY create_time DESC, key_id DESC`;
      return rows.map((r) => ({ keyId: r.key_id, publicKey: new Uint8Array(r.public_key), privateKey: r.private_key, createTime: r.create_time }));
    },
    /** Stores a new key (audited as the call that made it, if any). */
    async insert(k: StoredFirmwareKey): Promise<void> {
      await auditedChange(
        sql,
        async (q) => {
          await q`INSERT INTO firmware_signing_keys (key_id, public_key, private_key, create_time)
                VALUES (${k.keyId}, ${Buffer.from(k.publicKey)}, ${k.privateKey}, ${k.createTime})`;
          return true;
        },
        { resource: () => `firmwareSigningKeys/${k.keyId}` },
      );
    },
  };
}

export type FirmwareKeyStore = ReturnType<typeof createFirmwareKeyStore>;
