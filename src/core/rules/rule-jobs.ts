import { Violations } from "../errors.js";
import type { NewJob } from "../ports/job-repository.js";
import { parseJob } from "../jobs/job-validation.js";
import { newJob } from "../jobs/new-job.js";
import type { RuleRecord } from "./rule-record.js";

/**
 * The id of the job a rule's run creates: the rule id (cut to 44 characters) and the occurrence
 * in UTC, `nightly-clean-20261124t020000`. Deterministic, so one occurrence can never create two
 * jobs, even if its run row were lost; at most 60 characters, within a job id's 63.
 */
export function ruleJobId(ruleId: string, occurrence: Date): string {
  const stamp = occurrence
    .toISOString()
    .replace(/\.\d+Z$/, "")
    .replace(/[-:]/g, "")
    .toLowerCase();
  return `${ruleId.slice(0, 44).replace(/-+$/, "")}-${stamp}`;
}

/**
 * The job a run of a job rule starts, RUNNING from the firing. The template was validated when
 * the rule was saved; it is validated again here (the rules may have changed since), and an
 * error says why the run fails.
 */
export function jobForRun(rule: RuleRecord, occurrence: Date, now: Date): { job: NewJob } | { error: string } {
  if (rule.target.kind !== "job") throw new Error(`rules/${rule.id} does not start jobs`);
  const v = new Violations();
  const spec = parseJob(rule.target.template, v, now);
  if (!spec) return { error: `the job template is no longer valid: ${v.list.map((x) => `${x.field} ${x.description}`).join("; ")}` };
  // Starts at the firing (a template has no start time), named after the rule if it has no name.
  // The job acts for the rule's creator: each of its rollout batches checks their rights again.
  const job = newJob(
    ruleJobId(rule.id, occurrence),
    { ...spec, displayName: spec.displayName || rule.displayName, startTime: undefined },
    now,
    rule.creator,
    `started by rules/${rule.id} for ${occurrence.toISOString()}`,
  );
  return { job };
}
