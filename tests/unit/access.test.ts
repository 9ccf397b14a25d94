import { describe, expect, it } from "vitest";
import { accessFromRights, authorize, FULL_ACCESS } from "../../src/core/access/access.js";
import { parseSelector } from "../../src/core/access/selector.js";
import { hashPassword, verifyPassword } from "../../src/core/auth/passwords.js";

const led = (id: string, labels: Record<string, string> = {}, owner = "") => ({ id, kind: "led", labels, owner });

function bob(grants: { devices?: Record<string, "viewer" | "operator" | "owner">; selectors?: Array<[string, "viewer" | "operator" | "owner"]> } = {}) {
  return accessFromRights({
    caller: { user: "bob", admin: false, groups: [] },
    devices: new Map(Object.entries(grants.devices ?? {})),
    selectors: (grants.selectors ?? []).map(([s, role]) => ({ filter: parseSelector(s), role })),
  });
}

describe("rights decisions", () => {
  it("gives the owner, direct shares and matching selectors their role; the strongest wins", () => {
    const a = bob({
      devices: { d1: "viewer", d2: "operator" },
      selectors: [
        ['labels.room = "kitchen"', "operator"],
        ['kind = "led"', "viewer"],
      ],
    });
    expect(a.roleOn(led("mine", {}, "bob"))).toBe("owner");
    expect(a.roleOn(led("d1"))).toBe("viewer");
    expect(a.roleOn(led("d1", { room: "kitchen" }))).toBe("operator");
    expect(a.roleOn(led("d2"))).toBe("operator");
    expect(a.roleOn(led("x"))).toBe("viewer"); // kind = led
    expect(a.roleOn({ id: "c", kind: "coffee_machine", labels: {}, owner: "alice" })).toBeUndefined();
    expect(a.scope()).toMatchObject({ all: false, owner: "bob", deviceIds: ["d1", "d2"] });
  });

  it("answers NOT_FOUND to a caller who cannot see the device, PERMISSION_DENIED to one whose role is short", () => {
    const a = bob({ devices: { d1: "viewer" } });
    expect(() => authorize(a, "device.read", led("d1"))).not.toThrow();
    expect(() => authorize(a, "task.write", led("d1"))).toThrow(expect.objectContaining({ code: "PERMISSION_DENIED" }));
    expect(() => authorize(a, "device.read", led("d9"))).toThrow(expect.objectContaining({ code: "NOT_FOUND", message: "devices/d9 not found" }));
    expect(() => authorize(bob({ devices: { d1: "operator" } }), "device.delete", led("d1"))).toThrow(expect.objectContaining({ code: "PERMISSION_DENIED" }));
    expect(() => authorize(FULL_ACCESS, "device.delete", led("d1"))).not.toThrow();
  });

  it("restricts share selectors to kind and label terms", () => {
    expect(() => parseSelector('owner = "bob"')).toThrow(/kind and labels/);
    expect(() => parseSelector("online = true")).toThrow(/kind and labels/);
    expect(() => parseSelector("")).toThrow(/at least one term/);
    expect(parseSelector('labels.room = "kitchen" AND labels.floor:*').type).toBe("and");
    expect(() => parseSelector('labels.room = "kitchen" OR NOT kind = "led"')).not.toThrow();
    expect(() => parseSelector('labels.room = "kitchen" OR firmware_version < "2.0.0"')).toThrow(/kind and labels/);
  });
});

describe("passwords", () => {
  it("hashes with scrypt and a per-user salt, and verifies in constant time", async () => {
    const a = await hashPassword("correct horse");
    const b = await hashPassword("correct horse");
    expect(a).toMatch(/^scrypt\$32768\$8\$1\$/);
    expect(a).not.toBe(b);
    expect(a).not.toContain("correct horse");
    expect(await verifyPassword("correct horse", a)).toBe(true);
    expect(await verifyPassword("correct horsf", a)).toBe(false);
    expect(await verifyPassword("correct horse", null)).toBe(false);
    expect(await verifyPassword("x", "garbage")).toBe(false);
  });
});
