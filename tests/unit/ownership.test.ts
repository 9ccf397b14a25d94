import { describe, expect, it } from "vitest";
import { type Access, accessFromRights, creatorOf, FULL_ACCESS, serviceAccess } from "../../src/core/access/access.js";
import { creatorCheck, creatorUsers, parseCreator } from "../../src/core/access/creator-rights.js";
import type { UserRights } from "../../src/core/ports/rights.js";
import { checkOwner } from "../../src/core/devices/device-owner.js";
import { InvalidArgumentError, PermissionDeniedError } from "../../src/core/errors.js";

const user = (name: string, admin = false): Access => accessFromRights({ caller: { user: name, admin, groups: [] }, devices: new Map(), selectors: [] });
const users = new Set(["alice", "bob", "admin"]);
const exists = async (n: string) => users.has(n);

/** What checkOwner threw: its class and, for INVALID_ARGUMENT, the field. */
async function refusal(p: Promise<void>): Promise<string> {
  try {
    await p;
    return "ok";
  } catch (err) {
    if (err instanceof InvalidArgumentError) return `INVALID_ARGUMENT ${err.violations.map((v) => v.field).join(",")}`;
    if (err instanceof PermissionDeniedError) return "PERMISSION_DENIED";
    throw err;
  }
}

describe("device owner rules", () => {
  // [who, new owner, current owner (undefined = CreateDevice), expected]
  const cases: Array<[string, Access, string, string | undefined, string]> = [
    ["the owner gives it to an existing user", user("alice"), "bob", "alice", "ok"],
    ["an admin gives anyone's device to an existing user", user("root", true), "alice", "bob", "ok"],
    ["an unchanged owner needs no right (a device sent back whole)", user("carol"), "alice", "alice", "ok"],
    ["the owner cannot give it to an unknown user", user("alice"), "mallory", "alice", "INVALID_ARGUMENT device.owner"],
    ["an admin cannot either", user("root", true), "mallory", "alice", "INVALID_ARGUMENT device.owner"],
    ["never to empty, not even by an admin", user("root", true), "", "alice", "INVALID_ARGUMENT device.owner"],
    ["a resource name is refused with a hint", user("alice"), "users/bob", "alice", "INVALID_ARGUMENT device.owner"],
    ["an owner-share holder is not the owner", user("carol"), "carol", "alice", "PERMISSION_DENIED"],
    ["a stranger is refused before any lookup (no probing of user names)", user("carol"), "mallory", "alice", "PERMISSION_DENIED"],
    ["nobody but an admin takes an ownerless device", user("carol"), "carol", "", "PERMISSION_DENIED"],
    ["create: an admin registers a device for an existing user", user("root", true), "bob", undefined, "ok"],
    ["create: not for an unknown user", user("root", true), "mallory", undefined, "INVALID_ARGUMENT device.owner"],
    ["create: a user names only themselves", user("alice"), "bob", undefined, "PERMISSION_DENIED"],
    ["create: a user naming themselves must exist", user("ghost"), "ghost", undefined, "INVALID_ARGUMENT device.owner"],
  ];
  for (const [name, access, next, current, expected] of cases) {
    it(name, async () => {
      expect(await refusal(checkOwner(access, next, current, exists))).toBe(expected);
    });
  }
});

describe("rules and jobs run with their creator's rights", () => {
  const dev = (id: string, owner = "", labels: Record<string, string> = {}) => ({ id, kind: "led", labels, owner });
  const rights = (u: Partial<UserRights>): UserRights => ({ exists: true, admin: false, groups: [], grants: [], ...u });

  it("names creators users/{user} or services/{service}", () => {
    expect(creatorOf(user("alice"))).toBe("users/alice");
    expect(creatorOf(user("root", true))).toBe("users/root");
    expect(creatorOf(FULL_ACCESS)).toBe("services/tether");
    expect(creatorOf(serviceAccess("ingest"))).toBe("services/ingest");
    expect(parseCreator("users/alice")).toEqual({ kind: "user", user: "alice" });
    expect(parseCreator("services/x")).toEqual({ kind: "service", name: "x" });
    expect(parseCreator("alice")).toBeUndefined();
    expect(creatorUsers(["users/b", "services/x", "users/a", "users/b"])).toEqual(["a", "b"]);
  });

  it("keeps commanding where the creator owns, is admin, or holds operator by share, group or selector", () => {
    const check = creatorCheck(
      new Map([
        ["owner", rights({})],
        ["root", rights({ admin: true })],
        ["op", rights({ grants: [{ targetKind: "device", target: "x", role: "operator" }] })],
        ["grouped", rights({ groups: ["team"], grants: [{ targetKind: "device", target: "x", role: "owner" }] })],
        ["sel", rights({ grants: [{ targetKind: "selector", target: 'labels.room = "hall"', role: "operator" }] })],
      ]),
    );
    expect(check("users/owner", dev("x", "owner"))).toBeUndefined();
    expect(check("users/root", dev("x"))).toBeUndefined();
    expect(check("users/op", dev("x"))).toBeUndefined();
    expect(check("users/grouped", dev("x"))).toBeUndefined();
    expect(check("users/sel", dev("x", "", { room: "hall" }))).toBeUndefined();
    expect(check("services/tether", dev("x"))).toBeUndefined();
  });

  it("stops when the share was removed, the user deleted or demoted, and says why", () => {
    const check = creatorCheck(
      new Map([
        ["unshared", rights({})],
        ["viewer", rights({ grants: [{ targetKind: "device", target: "x", role: "viewer" }] })],
        ["demoted", rights({ admin: false })],
        ["deleted", rights({ exists: false })],
        ["sel", rights({ grants: [{ targetKind: "selector", target: 'labels.room = "hall"', role: "operator" }] })],
      ]),
    );
    expect(check("users/unshared", dev("x", "alice"))).toBe("skipped: creator users/unshared lost operator on devices/x (unshared has no role on it)");
    expect(check("users/viewer", dev("x"))).toBe("skipped: creator users/viewer lost operator on devices/x (viewer is only viewer on it)");
    expect(check("users/demoted", dev("x"))).toMatch(/^skipped: creator users\/demoted lost operator on devices\/x/);
    expect(check("users/deleted", dev("x"))).toBe("skipped: creator users/deleted lost operator on devices/x (no such user: deleted, or never registered)");
    expect(check("users/absent", dev("x"))).toBe("skipped: creator users/absent lost operator on devices/x (no such user: deleted, or never registered)");
    // Relabeled out of the selector the share follows.
    expect(check("users/sel", dev("x", "", { room: "garage" }))).toMatch(/^skipped: creator users\/sel lost operator/);
    expect(check("bogus", dev("x"))).toMatch(/^skipped: creator bogus lost operator on devices\/x \(not a user or service name\)/);
  });
});
