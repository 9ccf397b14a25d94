import { randomUUID } from "node:crypto";
import { clone } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type Rule, RuleSchema } from "../../../gen/tether/v1/rule_pb.js";
import type {
  CreateRuleRequest,
  DeleteRuleRequest,
  ListRuleRunsRequest,
  ListRuleRunsResponse,
  ListRulesRequest,
  ListRulesResponse,
  PreviewRuleRequest,
  PreviewRuleResponse,
  UpdateRuleRequest,
} from "../../../gen/tether/v1/rule_service_pb.js";
import { type Access, creatorOf, requireAdmin } from "../access/access.js";
import { metaOf } from "../access/device-meta.js";
import { createDeviceRights } from "../access/device-rights.js";
import type { Action } from "../access/roles.js";
import type { Clock } from "../clock.js";
import { deviceName, truncate } from "../devices/device-name.js";
import type { DeviceRepository } from "../ports/device-repository.js";
import { AbortedError, FailedPreconditionError, InvalidArgumentError, NotFoundError, Violations } from "../errors.js";
import { decodePageToken, encodePageToken, resolvePageSize } from "../page-token.js";
import { productByCase } from "../products/index.js";
import { isScheduled, type RuleRecord, ruleEtag, toRuleProto, toRuleRunProto } from "./rule-record.js";
import { generateRuleId, isValidRuleId, parseRuleName, ruleName } from "./rule-name.js";
import type { RuleRepository } from "../ports/rule-repository.js";
import { applyRuleMask } from "./rule-update-mask.js";
import { checkCommand, checkEventMetric, parseRule, parseTrigger, parseWindow, RULE_DEFAULTS, type RuleSpec } from "./rule-validation.js";
import { nextOccurrence, nextOccurrences } from "./schedule.js";

export interface RuleServiceDeps {
  rules: RuleRepository;
  devices: DeviceRepository;
  clock: Clock;
  /** Called after a committed change (create, update, pause, resume, delete): wake the scheduler, reload event rules. */
  onRulesChanged?: () => void;
}

export type RuleService = ReturnType<typeof createRuleService>;

/**
 * The RuleService use cases: validation against the target's product kind, etags, masks, preview, history.
 *
 * Rights: a rule is scoped by its target. On a device target, reading needs viewer and any change
 * (create, update, pause, resume, delete) operator on that device. A selector target can match
 * devices the caller cannot see, now or later, so selector rules are admin-only, read and write;
 * so are job rules, as jobs are.
 */
export function createRuleService({ rules, devices, clock, onRulesChanged }: RuleServiceDeps) {
  const rights = createDeviceRights(devices);

  /** NOT_FOUND (named as the rule) if the caller may not see it; PERMISSION_DENIED if they may not `action` it. */
  async function authorizeRule(access: Access, action: Action, r: Pick<RuleRecord, "id" | "target">): Promise<void> {
    if (access.all) return;
    if (r.target.kind === "device") {
      await rights.require(access, "device.read", r.target.deviceId, ruleName(r.id));
      await rights.require(access, action, r.target.deviceId);
    } else if (action === "device.read") throw new NotFoundError(ruleName(r.id));
    else requireAdmin(access, r.target.kind === "job" ? "a rule that starts jobs" : "a rule targeting a selector");
  }

  async function load(access: Access, name: string, action: Action, field = "name"): Promise<RuleRecord> {
    const id = parseRuleName(name, field);
    const r = await rules.get(id);
    if (!r) throw new NotFoundError(ruleName(id));
    await authorizeRule(access, action, r);
    return r;
  }

  /** Validates a rule completely: its own fields, then (I/O) the target device and the command's kind. */
  async function validate(access: Access, input: Rule, now: Date, checkFuture: boolean): Promise<RuleSpec> {
    const v = new Violations();
    const spec = parseRule(input, "rule", v, { now, checkFuture });
    if (input.target.case === "device" && spec?.target.kind === "device") {
      const stored = await devices.get(spec.target.deviceId);
      // A device the caller cannot see does not exist, as far as they can tell.
      if (!stored || (!access.all && access.roleOn(metaOf(stored.device)) === undefined))
        v.add("rule.device", `${deviceName(spec.target.deviceId)} does not exist`);
      else {
        const product = productByCase(stored.device.kind.case!);
        if (!spec.alarm) checkCommand(input.command, product, "rule.command", v, deviceName(spec.target.deviceId));
        checkEventMetric(spec.trigger, product, "rule.event_trigger.metric", v, deviceName(spec.target.deviceId));
      }
    }
    v.throwIfAny();
    return spec!;
  }

  function firstFire(spec: Pick<RuleRecord, "trigger" | "startTime" | "endTime">, now: Date): Date | undefined {
    return isScheduled(spec.trigger) ? nextOccurrence({ trigger: spec.trigger, startTime: spec.startTime, endTime: spec.endTime }, now) : undefined;
  }

  async function save(next: RuleRecord, reschedule: boolean): Promise<Rule> {
    const updated = await rules.update(next, { reschedule });
    if (!updated) {
      if (!(await rules.get(next.id))) throw new NotFoundError(ruleName(next.id));
      throw new AbortedError(`${ruleName(next.id)} was changed concurrently; re-read it and retry`);
    }
    onRulesChanged?.();
    return toRuleProto(updated);
  }

  return {
    async createRule(access: Access, req: CreateRuleRequest): Promise<Rule> {
      if (!req.rule) throw InvalidArgumentError.field("rule", "is required");
      if (req.ruleId !== "" && !isValidRuleId(req.ruleId)) {
        throw InvalidArgumentError.field("rule_id", `"${truncate(req.ruleId)}" must be 1-63 lowercase letters, digits or hyphens, starting with a letter`);
      }
      const now = clock.now();
      const spec = await validate(access, req.rule, now, true);
      const id = req.ruleId || generateRuleId();
      await authorizeRule(access, "rule.write", { id, target: spec.target });
      const record = await rules.insert({
        id,
        uid: randomUUID(),
        ...spec,
        paused: false,
        nextFireTime: firstFire(spec, now),
        createTime: now,
        updateTime: now,
        // Every firing runs with the creator's rights, checked again each time.
        creator: creatorOf(access),
      });
      onRulesChanged?.();
      return toRuleProto(record);
    },

    async getRule(access: Access, name: string): Promise<Rule> {
      return toRuleProto(await load(access, name, "device.read"));
    },

    async listRules(access: Access, req: ListRulesRequest): Promise<ListRulesResponse> {
      const limit = resolvePageSize(req.pageSize);
      const afterId = decodePageToken(req.pageToken, "rules");
      const rows = await rules.list({ afterId, scope: access.scope(), limit: limit + 1 });
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      return {
        $typeName: "tether.v1.ListRulesResponse",
        rules: page.map(toRuleProto),
        nextPageToken: rows.length > limit && last ? encodePageToken(last.id, "rules") : "",
      };
    },

    async updateRule(access: Access, req: UpdateRuleRequest): Promise<Rule> {
      if (!req.rule) throw InvalidArgumentError.field("rule", "is required");
      const stored = await load(access, req.rule.name, "rule.write", "rule.name");
      if (req.rule.etag !== "" && req.rule.etag !== ruleEtag(stored)) {
        throw new AbortedError(`etag mismatch: ${ruleName(stored.id)} was changed since it was read; re-read it and retry`);
      }
      const merged = clone(RuleSchema, toRuleProto(stored));
      const { reschedule } = applyRuleMask(req.updateMask?.paths ?? [], req.rule, merged);
      const now = clock.now();
      const spec = await validate(access, merged, now, reschedule);
      if ((spec.alarm === undefined) !== (stored.alarm === undefined)) {
        throw InvalidArgumentError.field("update_mask.paths", "alarm: a task rule cannot become an alarm rule; create a new rule");
      }
      await authorizeRule(access, "rule.write", { id: stored.id, target: spec.target });
      const next: RuleRecord = { ...stored, ...spec, updateTime: now };
      if (reschedule) next.nextFireTime = firstFire(spec, now);
      return save(next, reschedule);
    },

    async deleteRule(access: Access, req: DeleteRuleRequest): Promise<void> {
      const id = parseRuleName(req.name);
      const stored = await rules.get(id);
      if (!stored) {
        if (req.allowMissing) return;
        throw new NotFoundError(ruleName(id));
      }
      await authorizeRule(access, "rule.write", stored);
      if (req.etag !== "" && req.etag !== ruleEtag(stored)) {
        throw new AbortedError(`etag mismatch: ${ruleName(id)} was changed since it was read; re-read it and retry`);
      }
      const deleted = await rules.delete(id, req.etag !== "" ? stored.revision : undefined);
      if (!deleted && !req.allowMissing) {
        if (req.etag !== "") throw new AbortedError(`${ruleName(id)} was changed concurrently; re-read it and retry`);
        throw new NotFoundError(ruleName(id));
      }
      onRulesChanged?.();
    },

    /** Pausing a paused rule returns it unchanged. */
    async pauseRule(access: Access, name: string): Promise<Rule> {
      const stored = await load(access, name, "rule.write");
      if (stored.paused) return toRuleProto(stored);
      return save({ ...stored, paused: true, updateTime: clock.now() }, false);
    },

    /** Resumes from now: occurrences during the pause are not caught up (they are not a misfire). */
    async resumeRule(access: Access, name: string): Promise<Rule> {
      const stored = await load(access, name, "rule.write");
      if (!stored.paused) return toRuleProto(stored);
      const now = clock.now();
      return save({ ...stored, paused: false, updateTime: now, nextFireTime: firstFire(stored, now) }, true);
    },

    async previewRule(access: Access, req: PreviewRuleRequest): Promise<PreviewRuleResponse> {
      const count = req.count === 0 ? RULE_DEFAULTS.defaultPreview : req.count;
      const v = new Violations();
      if (count < 1 || count > RULE_DEFAULTS.maxPreview) v.add("count", `must be between 1 and ${RULE_DEFAULTS.maxPreview}`);
      if ((req.name === "") === (req.rule === undefined)) v.add("name", "set either name (a stored rule) or rule (a rule not yet created)");
      v.throwIfAny();
      const now = clock.now();
      let spec: Pick<RuleRecord, "trigger" | "startTime" | "endTime"> | undefined;
      if (req.name !== "") {
        spec = await load(access, req.name, "device.read");
      } else {
        // Only what decides the schedule is read and validated.
        const window = parseWindow(req.rule!, "rule", v, { now, checkFuture: false });
        const trigger = parseTrigger(req.rule!, "rule", v, { now, checkFuture: false }, window);
        v.throwIfAny();
        spec = { trigger: trigger!, ...window };
      }
      const trigger = spec.trigger;
      if (!isScheduled(trigger)) throw new FailedPreconditionError("an event rule fires on observations, not on a schedule: there is nothing to preview");
      const from = req.startTime ? timestampDate(req.startTime) : now;
      const times = nextOccurrences({ trigger, startTime: spec.startTime, endTime: spec.endTime }, from, count);
      return {
        $typeName: "tether.v1.PreviewRuleResponse",
        fireTimes: times.map((t) => timestampFromDate(t)),
        timeZone: trigger.kind === "cron" ? trigger.timeZone : "UTC",
      };
    },

    async listRuleRuns(access: Access, req: ListRuleRunsRequest): Promise<ListRuleRunsResponse> {
      const id = parseRuleName(req.parent, "parent");
      const limit = resolvePageSize(req.pageSize);
      const query = `runs|${req.parent}`;
      const before = decodePageToken(req.pageToken, query);
      await load(access, req.parent, "device.read", "parent");
      const rows = await rules.listRuns(id, { beforeId: before === undefined ? undefined : Number(before), limit: limit + 1 });
      const page = rows.slice(0, limit);
      const states = await rules.taskStates(page.flatMap((r) => r.targets.flatMap((t) => (t.taskId ? [t.taskId] : []))));
      const last = page.at(-1);
      return {
        $typeName: "tether.v1.ListRuleRunsResponse",
        runs: page.map((r) => toRuleRunProto(r, states)),
        nextPageToken: rows.length > limit && last ? encodePageToken(String(last.id), query) : "",
      };
    },
  };
}
