import { describe, expect, it } from "vitest";
import { parseDeviceFilter } from "../../src/core/devices/device-filter.js";
import { InvalidArgumentError } from "../../src/core/errors.js";
import { decodePageToken, encodePageToken, resolvePageSize } from "../../src/core/page-token.js";

describe("parseDeviceFilter", () => {
  const cases: Array<{ name: string; filter: string; expect: unknown }> = [
    { name: "empty", filter: "  ", expect: { labels: [] } },
    { name: "kind", filter: 'kind = "led"', expect: { kind: "led", labels: [] } },
    { name: "bare values", filter: "kind=coffee_machine AND online=false", expect: { kind: "coffee_machine", online: false, labels: [] } },
    {
      name: "labels with every operator",
      filter: 'labels.room = "living room" AND labels.tier != gold AND labels.site:*',
      expect: {
        labels: [
          { key: "room", op: "=", value: "living room" },
          { key: "tier", op: "!=", value: "gold" },
          { key: "site", op: "present" },
        ],
      },
    },
    { name: "escaped quote", filter: 'owner = "a\\"b"', expect: { owner: 'a"b', labels: [] } },
  ];
  for (const c of cases) it(c.name, () => expect(parseDeviceFilter(c.filter)).toEqual(c.expect));

  for (const bad of ['kind = "toaster"', "colour = red", "online = maybe", 'kind != "led"', "labels.room:x", 'kind = "led" OR kind = "x"', "labels. = 1"]) {
    it(`refuses ${bad}`, () => {
      const err = (() => {
        try {
          parseDeviceFilter(bad);
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect((err as InvalidArgumentError).violations[0]!.field).toBe("filter");
    });
  }
});

describe("page tokens", () => {
  it("round-trips the last key for the same query", () => {
    expect(decodePageToken(encodePageToken("devices/b", "q1"), "q1")).toBe("devices/b");
    expect(decodePageToken("", "q1")).toBeUndefined();
  });
  it("refuses a token from another query or a forged one", () => {
    expect(() => decodePageToken(encodePageToken("x", "q1"), "q2")).toThrow(InvalidArgumentError);
    expect(() => decodePageToken("not-base64!", "q1")).toThrow(InvalidArgumentError);
    expect(() => decodePageToken(Buffer.from('{"k":1}').toString("base64url"), "q1")).toThrow(InvalidArgumentError);
  });
  it("resolves page sizes per AIP-158", () => {
    expect(resolvePageSize(0)).toBe(50);
    expect(resolvePageSize(5000)).toBe(1000);
    expect(resolvePageSize(7)).toBe(7);
    expect(() => resolvePageSize(-1)).toThrow(InvalidArgumentError);
  });
});
