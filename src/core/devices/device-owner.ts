import type { Access } from "../access/access.js";
import { InvalidArgumentError, PermissionDeniedError } from "../errors.js";
import { isValidPrincipalId } from "../users/user-name.js";
import { truncate } from "./device-name.js";

/** Whether a user of that name exists (the users table). */
export type UserExists = (name: string) => Promise<boolean>;

/**
 * Checks an owner a caller wants to give a device: on CreateDevice (`current` undefined, an
 * explicit owner) or UpdateDevice (`current` the stored owner). The owner holds every right on
 * the device, so:
 *
 * - only an admin or the current owner moves ownership (not a holder of an owner *share*: a share
 *   can be revoked, a transfer cannot), and on create only an admin names someone else;
 * - never to empty: an ownerless device would answer to admins only, and nobody could share it;
 * - only to an existing user: whoever later registered an unknown name would inherit the device.
 *
 * An unchanged owner needs none of this (a client sending a device back whole). A stranger gets
 * PERMISSION_DENIED before any lookup, so they cannot probe which users exist.
 */
export async function checkOwner(access: Access, next: string, current: string | undefined, userExists: UserExists, field = "device.owner"): Promise<void> {
  if (current !== undefined && next === current) return;
  if (!access.all) {
    if (current === undefined && next !== access.caller.user) {
      throw new PermissionDeniedError(`creating a device owned by "${truncate(next)}" needs an admin; leave owner empty to own it yourself`);
    }
    if (current !== undefined && current !== access.caller.user) {
      throw new PermissionDeniedError(
        `changing the owner of a device needs an admin or its owner${current ? ` (${truncate(current)})` : ""}; ${access.caller.user} is neither`,
      );
    }
  }
  if (next === "") throw InvalidArgumentError.field(field, "must not be empty: a device always has an owner; give it to another existing user");
  if (next.startsWith("users/"))
    throw InvalidArgumentError.field(field, `"${truncate(next)}" is a resource name: give the user's bare name ("${truncate(next.slice(6))}")`);
  if (!isValidPrincipalId(next) || !(await userExists(next))) throw InvalidArgumentError.field(field, `"${truncate(next)}" is not an existing user`);
}
