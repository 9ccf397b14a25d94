import { normalizeSerial } from "./certificate-name.js";

/**
 * The revoked serial numbers this replica knows, in memory: loaded from the database at start and
 * kept current from the revocation feed, so the broker and the API check a connection or a call
 * without a query. A set of 32-character strings: a million revocations cost ~100 MB at worst.
 */
export interface RevocationIndex {
  has(serialNumber: string): boolean;
  add(serialNumber: string): void;
  readonly size: number;
}

export function createRevocationIndex(initial: Iterable<string> = []): RevocationIndex {
  const revoked = new Set<string>();
  for (const s of initial) revoked.add(normalizeSerial(s));
  return {
    has: (serial) => revoked.has(normalizeSerial(serial)),
    add: (serial) => void revoked.add(normalizeSerial(serial)),
    get size() {
      return revoked.size;
    },
  };
}
