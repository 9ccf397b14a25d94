import { randomBytes } from "node:crypto";
import { truncate } from "../devices/device-name.js";
import { InvalidArgumentError } from "../errors.js";

/** `{rule}` of `rules/{rule}`: the same shape as a device id, so it is safe in names and logs. */
const RULE_ID = /^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export function isValidRuleId(id: string): boolean {
  return RULE_ID.test(id);
}

export function ruleName(id: string): string {
  return `rules/${id}`;
}

/** `rules/{rule}/runs/{run}`. */
export function ruleRunName(ruleId: string, runId: number): string {
  return `rules/${ruleId}/runs/${runId}`;
}

/** Parses `rules/{rule}`; InvalidArgument naming `field` otherwise. */
export function parseRuleName(name: string, field = "name"): string {
  if (name === "") throw InvalidArgumentError.field(field, "is required, e.g. rules/morning-lights");
  const m = /^rules\/([^/]+)$/.exec(name);
  if (!m || !isValidRuleId(m[1]!)) {
    throw InvalidArgumentError.field(
      field,
      `"${truncate(name)}" is not a rule name: expected rules/{rule} where {rule} is 1-63 lowercase letters, digits or hyphens starting with a letter`,
    );
  }
  return m[1]!;
}

/** A server-chosen id for CreateRule without `rule_id`. */
export function generateRuleId(): string {
  return `rule-${randomBytes(5).toString("hex")}`;
}
