import { randomUUID } from "node:crypto";
import type { NewTask } from "../ports/task-repository.js";
import { commandHash, TASK_DEFAULTS } from "../tasks/task-request.js";
import { State } from "../tasks/task-state.js";
import type { RuleRecord, RunState, RunTarget } from "./rule-record.js";

/**
 * The idempotency key of the task a run creates for a device: deterministic, so the same
 * occurrence can never create two tasks on one device, even if its run row were lost. The uid
 * keeps a re-created rule of the same name from colliding with its predecessor's tasks.
 */
export function ruleRequestId(rule: Pick<RuleRecord, "id" | "uid">, occurrence: Date): string {
  return `rule:${rule.id}:${rule.uid.slice(0, 8)}:${occurrence.toISOString()}`;
}

/** The QUEUED task a rule's run creates for one device. The TTL runs from the firing. */
export function taskForRule(rule: RuleRecord, deviceId: string, occurrence: Date, now: Date): NewTask {
  const requestId = ruleRequestId(rule, occurrence);
  return {
    id: randomUUID(),
    deviceId,
    command: rule.command,
    state: State.QUEUED,
    stateReason: `created by rules/${rule.id} for ${occurrence.toISOString()}`,
    requestId,
    // As CreateTask computes it, so a CreateTask replaying this request id sees the same command.
    requestHash: commandHash(rule.command),
    expireTime: new Date(now.getTime() + rule.taskTtlMs),
    executionTimeoutMs: TASK_DEFAULTS.executionTimeoutMs,
    maxAttempts: TASK_DEFAULTS.maxAttempts,
    attempt: 0,
    createTime: now,
    updateTime: now,
    cancelPending: false,
    lateEventCount: 0,
    priority: rule.taskPriority,
    creator: `rules/${rule.id}`,
  };
}

/** A run's state and reason from what happened to its targets. */
export function runOutcome(rule: RuleRecord, targets: RunTarget[], extraReason = ""): { state: RunState; reason: string } {
  const created = targets.filter((t) => t.taskId).length;
  const join = (s: string) => (extraReason ? `${s}; ${extraReason}` : s);
  if (targets.length === 0) {
    const sel =
      rule.target.kind === "selector"
        ? `kind ${rule.target.productKind} with ${Object.entries(rule.target.labels)
            .map(([k, v]) => `${k}=${v}`)
            .join(",")}${rule.target.filterText ? ` matching ${rule.target.filterText}` : ""}`
        : "";
    return { state: "NO_TARGETS", reason: join(`the selector (${sel}) matched no device`) };
  }
  if (created === targets.length) return { state: "FIRED", reason: join(`created ${created} task${created === 1 ? "" : "s"}`) };
  const firstError = targets.find((t) => t.error)?.error ?? "";
  if (created === 0) return { state: "FAILED", reason: join(`no task created: ${firstError}`) };
  return { state: "PARTIAL", reason: join(`created ${created} of ${targets.length} tasks; e.g. ${firstError}`) };
}
