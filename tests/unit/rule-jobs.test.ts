import { describe, expect, it } from "vitest";
import { isValidJobId } from "../../src/core/jobs/job-name.js";
import { ruleJobId } from "../../src/core/rules/rule-jobs.js";

describe("ruleJobId", () => {
  it("names a run's job after the rule and the occurrence in UTC", () => {
    expect(ruleJobId("nightly-clean", new Date("2026-11-24T02:00:00+01:00"))).toBe("nightly-clean-20261124t010000");
  });

  it("stays a valid job id for the longest rule ids, without a double hyphen at the cut", () => {
    const long = `a${"-b".repeat(31)}`; // 63 characters
    const id = ruleJobId(long, new Date("2026-01-02T03:04:05.678Z"));
    expect(id.length).toBeLessThanOrEqual(63);
    expect(isValidJobId(id)).toBe(true);
    expect(id).not.toContain("--");
    expect(id.endsWith("-20260102t030405")).toBe(true);
  });

  it("gives distinct occurrences distinct ids, and one occurrence always the same id", () => {
    const a = new Date("2026-01-02T03:04:05Z");
    expect(ruleJobId("r", a)).toBe(ruleJobId("r", new Date(a)));
    expect(ruleJobId("r", a)).not.toBe(ruleJobId("r", new Date(a.getTime() + 1000)));
  });
});
