import { type Duration, timestampDate } from "@bufbuild/protobuf/wkt";
import type { ApiKey } from "../../../gen/tether/v1/user_pb.js";
import type { UserRecord } from "../ports/auth.js";
import { verifyPassword } from "../auth/passwords.js";
import { FailedPreconditionError, InvalidArgumentError, PermissionDeniedError, ResourceExhaustedError } from "../errors.js";
import type { RateLimiter } from "../rate-limit.js";

/** How the caller proved who they are (the auth interceptor's `Principal.via`). */
export type CallerProof = "certificate" | "token" | "api_key";

/** Longer than any sensible key, short enough that a date computed from it stays valid. */
const MAX_LIFETIME_MS = 100 * 365.25 * 86_400_000;

const durationMs = (d: Duration): number => Number(d.seconds) * 1000 + Math.trunc(d.nanos / 1e6);

/** When a new key expires (`expire_time` or `ttl`), or undefined for never. INVALID_ARGUMENT for a past or absurd time. */
export function resolveApiKeyExpiry(key: ApiKey | undefined, now: Date): Date | undefined {
  const e = key?.expiration;
  if (!e || e.case === undefined) return undefined;
  const at = e.case === "expireTime" ? timestampDate(e.value).getTime() : now.getTime() + durationMs(e.value);
  const field = e.case === "expireTime" ? "api_key.expire_time" : "api_key.ttl";
  if (!Number.isFinite(at) || at <= now.getTime())
    throw InvalidArgumentError.field(field, e.case === "expireTime" ? "must be in the future" : "must be more than 0");
  if (at - now.getTime() > MAX_LIFETIME_MS) throw InvalidArgumentError.field(field, "must be at most 100 years from now");
  return new Date(at);
}

/**
 * Minting a credential that outlives the caller's session needs more than that session: the
 * caller's own current password, unless they called with a client certificate (which a stolen
 * access token or API key cannot stand in for).
 */
export async function requireCallerPassword(
  proof: CallerProof,
  caller: UserRecord | undefined,
  currentPassword: string,
  confirmations: RateLimiter,
): Promise<void> {
  if (proof === "certificate") return;
  if (currentPassword === "") {
    throw InvalidArgumentError.field(
      "current_password",
      "is required to create an API key when calling with a token or an API key (a client certificate needs none)",
    );
  }
  if (!caller || caller.passwordHash === null) {
    throw new FailedPreconditionError("you have no password to confirm this with: set one, or create the key with a client certificate");
  }
  takeConfirmation(confirmations, caller.name);
  if (!(await verifyPassword(currentPassword, caller.passwordHash)))
    throw new PermissionDeniedError("current_password is wrong: creating an API key needs your current password");
}

/**
 * Reserves one check of `user`'s password before it is made (so concurrent guesses cannot all be
 * checked): a stolen access token must not become an unlimited password oracle.
 */
export function takeConfirmation(confirmations: RateLimiter, user: string): void {
  if (!confirmations.take(user)) throw new ResourceExhaustedError("too many password confirmations for this user; retry in a minute");
}
