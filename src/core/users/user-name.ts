import { InvalidArgumentError } from "../errors.js";

const ID = /^[a-z][a-z0-9._-]{0,62}$/;

/** `{user}` / `{group}` ids: 1–63 lowercase letters, digits, dots, hyphens or underscores, starting with a letter. */
export function isValidPrincipalId(id: string): boolean {
  return ID.test(id) && id !== "me";
}

/** `users/{user}` → `{user}`; `users/me` → `me` (the caller resolves it). */
export function parseUserName(name: string, field = "name"): string {
  const m = /^users\/([^/]+)$/.exec(name);
  if (!m || (!ID.test(m[1]!) && m[1] !== "me")) throw InvalidArgumentError.field(field, `"${name.slice(0, 80)}" is not a user name (users/{user})`);
  return m[1]!;
}

export function parseGroupName(name: string, field = "name"): string {
  const m = /^groups\/([^/]+)$/.exec(name);
  if (!m || !ID.test(m[1]!)) throw InvalidArgumentError.field(field, `"${name.slice(0, 80)}" is not a group name (groups/{group})`);
  return m[1]!;
}

export const userName = (id: string) => `users/${id}`;
export const groupName = (id: string) => `groups/${id}`;
