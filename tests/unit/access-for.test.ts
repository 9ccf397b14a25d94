import { describe, expect, it } from "vitest";
import { accessFromRights, type Access } from "../../src/core/access/access.js";
import { createAccessFor } from "../../src/core/access/access-for.js";
import { UnauthenticatedError } from "../../src/core/errors.js";

/** A rights source with fixed users; records the forceAdmin each lookup asked for. */
function source(users: Record<string, { admin: boolean }>) {
  const asked: Array<{ user: string; forceAdmin: boolean }> = [];
  return {
    asked,
    async forUser(user: string, opts: { forceAdmin?: boolean } = {}): Promise<Access & { exists: boolean }> {
      asked.push({ user, forceAdmin: opts.forceAdmin ?? false });
      const u = users[user];
      const admin = (u?.admin ?? false) || (opts.forceAdmin ?? false);
      return Object.assign(accessFromRights({ caller: { user, admin, groups: [] }, devices: new Map(), selectors: [] }), { exists: u !== undefined });
    },
  };
}

describe("accessFor", () => {
  it("gives Tether's services full access without asking for rights", async () => {
    const rights = source({});
    const access = await createAccessFor({ rights, bootstrapAdmin: "admin" })({ kind: "service", id: "tether", via: "certificate" });
    expect(access.all).toBe(true);
    expect(rights.asked).toEqual([]);
  });

  it("makes the bootstrap admin's certificate admin, but not a token of the same name", async () => {
    const rights = source({ admin: { admin: false } });
    const accessFor = createAccessFor({ rights, bootstrapAdmin: "admin" });
    expect((await accessFor({ kind: "user", id: "admin", via: "certificate" })).all).toBe(true);
    expect((await accessFor({ kind: "user", id: "admin", via: "token" })).all).toBe(false);
    expect((await accessFor({ kind: "user", id: "bob", via: "certificate" })).all).toBe(false);
    expect(rights.asked.map((a) => a.forceAdmin)).toEqual([true, false, false]);
  });

  it("refuses a token or key of a deleted user, and lets a certificate prove itself", async () => {
    const accessFor = createAccessFor({ rights: source({}), bootstrapAdmin: "admin" });
    await expect(accessFor({ kind: "user", id: "gone", via: "token" })).rejects.toBeInstanceOf(UnauthenticatedError);
    await expect(accessFor({ kind: "user", id: "gone", via: "api_key" })).rejects.toThrow("user gone no longer exists");
    expect((await accessFor({ kind: "user", id: "gone", via: "certificate" })).caller.user).toBe("gone");
  });
});
