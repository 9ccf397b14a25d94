import semver from "semver";
import { describe, expect, it } from "vitest";
import { type FilterSubject, matchesFilter, parseDeviceFilter, pinnedKind } from "../../src/core/devices/device-filter.js";
import { compareSemver, isSemver } from "../../src/core/semver.js";
import { InvalidArgumentError } from "../../src/core/errors.js";
import { decodePageToken, encodePageToken, resolvePageSize } from "../../src/core/page-token.js";

const refusal = (filter: string): InvalidArgumentError => {
  try {
    parseDeviceFilter(filter);
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidArgumentError);
    return e as InvalidArgumentError;
  }
  throw new Error(`accepted ${filter}`);
};

const device = (over: Partial<FilterSubject>): FilterSubject => ({ id: "d", kind: "led", owner: "", labels: {}, online: false, ...over });
const FLEET: FilterSubject[] = [
  device({ id: "kitchen-led", labels: { room: "kitchen", site: "north" }, online: true, firmwareVersion: "1.9.3", owner: "alice" }),
  device({ id: "hall-led", labels: { room: "hall" }, firmwareVersion: "1.10.0", lastSeenTime: new Date("2024-05-01T10:00:00Z") }),
  device({ id: "beta-led", labels: { site: "south" }, firmwareVersion: "1.10.0-beta.2", online: true }),
  device({ id: "odd-led", firmwareVersion: "build-77" }),
  device({
    id: "cold-thermostat",
    kind: "thermostat",
    labels: { site: "north" },
    reported: { temperatureCelsius: 16.5, mode: "THERMOSTAT_MODE_HEAT" },
    lastSeenTime: new Date("2024-06-01T00:00:00Z"),
  }),
  device({ id: "warm-thermostat", kind: "thermostat", reported: { temperatureCelsius: 21 } }),
  device({ id: "new-thermostat", kind: "thermostat", reported: {} }),
  device({ id: "coffee", kind: "coffee_machine", reported: { power: true, currentBrew: {} } }),
];
const select = (filter: string) =>
  FLEET.filter((d) => matchesFilter(parseDeviceFilter(filter), d))
    .map((d) => d.id)
    .sort();

describe("device filter: the filters of before still mean what they meant", () => {
  const cases: Array<[string, string[]]> = [
    ["  ", FLEET.map((d) => d.id).sort()],
    ['kind = "led"', ["beta-led", "hall-led", "kitchen-led", "odd-led"]],
    ["kind=led AND online=true", ["beta-led", "kitchen-led"]],
    ['labels.room = "kitchen" AND labels.site != south AND labels.site:*', ["kitchen-led"]],
    ['owner = "alice"', ["kitchen-led"]],
    ['name = "devices/hall-led"', ["hall-led"]],
    ["labels.room != kitchen AND kind = led", ["beta-led", "hall-led", "odd-led"]],
  ];
  for (const [filter, ids] of cases) it(filter || "empty", () => expect(select(filter)).toEqual(ids));
  it("unescapes quoted strings", () => expect(parseDeviceFilter('owner = "a\\"b"')).toEqual({ type: "text", field: "owner", op: "=", value: 'a"b' }));
});

describe("device filter: AND, OR, NOT and parentheses", () => {
  const cases: Array<[string, string[]]> = [
    ['labels.site = north OR labels.site = "south"', ["beta-led", "cold-thermostat", "kitchen-led"]],
    // AIP-160: OR binds tighter than AND.
    ["kind = thermostat AND labels.site = north OR labels.site = south", ["cold-thermostat"]],
    ["(kind = thermostat AND labels.site = north) OR labels.site = south", ["beta-led", "cold-thermostat"]],
    ["kind = led NOT online = true", ["hall-led", "odd-led"]],
    ["kind = led AND -labels.room:*", ["beta-led", "odd-led"]],
    ["NOT (kind = led OR kind = thermostat)", ["coffee"]],
    ["kind != led AND kind != thermostat", ["coffee"]],
  ];
  for (const [filter, ids] of cases) it(filter, () => expect(select(filter)).toEqual(ids));
});

describe("device filter: typed fields", () => {
  const cases: Array<[string, string[]]> = [
    ['firmware_version < "1.10.0"', ["beta-led", "kitchen-led"]],
    ['firmware_version >= "1.10.0-beta.1" AND firmware_version < 2.0.0', ["beta-led", "hall-led"]],
    ['firmware_version = "1.10.0+build.5"', ["hall-led"]],
    ['firmware_version = "build-77"', ["odd-led"]],
    ["firmware_version:* AND NOT firmware_version > 0.0.0", ["odd-led"]],
    ['last_seen_time > "2024-05-15T00:00:00Z"', ["cold-thermostat"]],
    ["last_seen_time:*", ["cold-thermostat", "hall-led"]],
    [
      'last_seen_time < "2024-05-15T00:00:00+02:00" OR NOT last_seen_time:*',
      FLEET.map((d) => d.id)
        .filter((id) => id !== "cold-thermostat")
        .sort(),
    ],
    ["thermostat.reported.temperature_celsius < 18", ["cold-thermostat"]],
    ["thermostat.reported.temperature_celsius >= 16.5", ["cold-thermostat", "warm-thermostat"]],
    ["thermostat.reported.temperature_celsius:*", ["cold-thermostat", "warm-thermostat"]],
    ["thermostat.reported.mode = HEAT", ["cold-thermostat"]],
    // An implicit field reads as its zero once the device reported something; never-reported matches nothing.
    ["thermostat.reported.mode = THERMOSTAT_MODE_UNSPECIFIED", ["warm-thermostat"]],
    ["coffee_machine.reported.power = true AND coffee_machine.reported.current_brew.progress_percent = 0", ["coffee"]],
    ["coffee_machine.reported.water_level_percent < 10", ["coffee"]],
  ];
  for (const [filter, ids] of cases) it(filter, () => expect(select(filter)).toEqual(ids));

  it("names the kind a job's command must be for", () => {
    expect(pinnedKind(parseDeviceFilter('labels.a = b AND kind = "thermostat"'))).toBe("thermostat");
    expect(pinnedKind(parseDeviceFilter("thermostat.reported.temperature_celsius < 18"))).toBe("thermostat");
    expect(pinnedKind(parseDeviceFilter("kind = led OR kind = thermostat"))).toBeUndefined();
  });
});

describe("device filter: refusals name the term and its position", () => {
  const cases: Array<[string, RegExp]> = [
    ['kind = "toaster"', /position 1: .*unknown kind "toaster"/],
    ["colour = red", /position 1: .*unknown field "colour"/],
    ["kind = led AND online = maybe", /position 16: cannot use "online = maybe": online must be true or false/],
    ["labels.room:x", /only takes "\*"/],
    ['kind = "led" OR kind = "x"', /position 17: .*unknown kind "x"/],
    ["labels. = 1", /not a label key/],
    ["(kind = led", /position 1: "\(" is not closed/],
    ["kind = led)", /position 11: expected AND, OR or the end/],
    ["kind = led AND", /position 15: expected a field name/],
    ["kind led", /position 6: expected a comparator/],
    ['firmware_version < "1.10"', /"1.10" is not a semantic version/],
    ["last_seen_time > yesterday", /RFC 3339/],
    ["thermostat.reported.temprature < 18", /has no field "temprature"; it has setpoint_celsius/],
    ["thermostat.reported.mode < HEAT", /supports only =, != and :\*/],
    ["thermostat.reported.mode = WARM", /is one of THERMOSTAT_MODE_UNSPECIFIED/],
    ["coffee_machine.reported.current_brew = 1", /is a message; name one of its fields/],
    ["kind < led", /kind supports only = and !=/],
    ["owner = 'unclosed", /not closed/],
  ];
  for (const [filter, re] of cases) {
    it(filter, () => {
      const err = refusal(filter);
      expect(err.violations[0]!.field).toBe("filter");
      expect(err.violations[0]!.description).toMatch(re);
    });
  }
  it("keeps its limits", () => {
    expect(refusal("x".repeat(2001)).message).toMatch(/longer than 2000/);
    expect(refusal(Array.from({ length: 101 }, (_, i) => `labels.k${i}:*`).join(" OR ")).message).toMatch(/more than 100 comparisons/);
    expect(refusal(`${"(".repeat(30)}kind = led${")".repeat(30)}`).message).toMatch(/nested more than 20/);
  });
});

describe("semantic version precedence", () => {
  // The order semver.org gives, with build metadata and numeric identifiers beyond 2^53.
  const ordered = [
    "0.9.0",
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "1.2.0",
    "1.9.3",
    "1.10.0",
    "2.0.0",
    "9007199254740993.0.0",
  ];
  it("orders versions as semver.org says, as the semver package does", () => {
    for (let i = 0; i < ordered.length; i++) {
      for (let j = 0; j < ordered.length; j++) {
        const expected = Math.sign(i - j);
        expect(compareSemver(ordered[i]!, ordered[j]!), `${ordered[i]} vs ${ordered[j]}`).toBe(expected);
        if (i < 12 && j < 12) expect(semver.compare(ordered[i]!, ordered[j]!)).toBe(expected);
      }
    }
    expect(compareSemver("1.0.0+a", "1.0.0+b")).toBe(0);
  });
  it("refuses what is not a semantic version", () => {
    for (const v of ["", "1.0", "v1.0.0", "01.0.0", "1.0.0-01", "1.0.0-", "1.0.0+", "build-77"]) expect(isSemver(v), v).toBe(false);
    expect(compareSemver("v1.0.0", "1.0.0")).toBeUndefined();
  });
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
