import { describe, expect, it } from "vitest";
import { didYouMean, editDistance } from "../../src/core/did-you-mean.js";

describe("did you mean", () => {
  it("counts insertions, deletions, substitutions and neighbour swaps as one edit each", () => {
    expect(editDistance("list", "list")).toBe(0);
    expect(editDistance("lst", "list")).toBe(1);
    expect(editDistance("lisst", "list")).toBe(1);
    expect(editDistance("lisr", "list")).toBe(1);
    expect(editDistance("lsit", "list")).toBe(1);
    expect(editDistance("colour", "color")).toBe(1);
    expect(editDistance("", "abc")).toBe(3);
    expect(editDistance("kitten", "sitting")).toBe(3);
  });

  it("suggests the closest command within two edits, or one the input starts", () => {
    const subs = ["create", "get", "list", "update", "delete"];
    expect(didYouMean("lst", subs)).toBe("list");
    expect(didYouMean("LIST", subs)).toBe("list");
    expect(didYouMean("creat", subs)).toBe("create");
    expect(didYouMean("udpate", subs)).toBe("update");
    expect(didYouMean("del", subs)).toBe("delete"); // a prefix, three edits away
    expect(didYouMean("device", ["serve", "devices", "tasks"])).toBe("devices");
    expect(didYouMean("prov", ["devices", "provisioning"])).toBe("provisioning");
    expect(didYouMean("--colour", ["--color", "--count"])).toBe("--color");
  });

  it("suggests nothing for a word unlike every candidate", () => {
    expect(didYouMean("frobnicate", ["create", "get", "list"])).toBeUndefined();
    expect(didYouMean("x", ["get", "ls"])).toBeUndefined();
    expect(didYouMean("", ["get"])).toBeUndefined();
  });
});
