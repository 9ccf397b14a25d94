import { Code, ConnectError } from "@connectrpc/connect";

/**
 * Whether `get` finds the resource (NOT_FOUND: false; any other failure is thrown). A delete with
 * `allow_missing` succeeds either way, so the CLI asks first to say which of the two happened.
 */
export async function exists(get: () => Promise<unknown>): Promise<boolean> {
  try {
    await get();
    return true;
  } catch (err) {
    if (err instanceof ConnectError && err.code === Code.NotFound) return false;
    throw err;
  }
}

/** What a delete prints: `deleted devices/x`, or that there was nothing to delete. */
export const deletedText = (name: string, found: boolean) => (found ? `deleted ${name}` : `${name} not found, nothing to delete`);
