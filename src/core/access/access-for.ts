import { UnauthenticatedError } from "../errors.js";
import { type Access, serviceAccess } from "./access.js";

/** What an authenticated caller is, as the API layer knows it (a subset of its Principal). */
export interface AccessPrincipal {
  kind: string;
  id: string;
  /** How the caller proved it: "certificate", "token", "api_key". */
  via: string;
}

/** The port access-for needs: each user's resolved rights and whether the user still exists. */
export interface UserAccessSource {
  forUser(user: string, opts?: { forceAdmin?: boolean }): Promise<Access & { exists: boolean }>;
}

/**
 * Turns an authenticated principal into what it may do. Policy, kept out of the composition root:
 * - Tether's own services have fixed service access.
 * - The bootstrap admin's certificate is always admin, so the CLI can never be locked out.
 * - A certificate proves itself (our CA issued it); a token or API key of a deleted user does not,
 *   so such a call is UNAUTHENTICATED.
 */
export function createAccessFor(deps: { rights: UserAccessSource; bootstrapAdmin: string }): (p: AccessPrincipal) => Promise<Access> {
  return async (p) => {
    if (p.kind === "service") return serviceAccess(p.id);
    const access = await deps.rights.forUser(p.id, { forceAdmin: p.via === "certificate" && p.id === deps.bootstrapAdmin });
    if (p.via !== "certificate" && !access.exists) throw new UnauthenticatedError(`user ${p.id} no longer exists`);
    return access;
  };
}
