import { create } from "@bufbuild/protobuf";
import { EmptySchema } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { RuleService as RuleServiceDesc } from "../../gen/tether/v1/rule_service_pb.js";
import type { RuleService } from "../core/rules/rule-service.js";
import { accessOf } from "./auth.js";

/** RuleService over Connect/gRPC: a thin shell; validation, scheduling and rights live in the core. */
export function ruleHandler(rules: RuleService): ServiceImpl<typeof RuleServiceDesc> {
  return {
    createRule: (req, ctx) => rules.createRule(accessOf(ctx), req),
    getRule: (req, ctx) => rules.getRule(accessOf(ctx), req.name),
    listRules: (req, ctx) => rules.listRules(accessOf(ctx), req),
    updateRule: (req, ctx) => rules.updateRule(accessOf(ctx), req),
    async deleteRule(req, ctx) {
      await rules.deleteRule(accessOf(ctx), req);
      return create(EmptySchema);
    },
    pauseRule: (req, ctx) => rules.pauseRule(accessOf(ctx), req.name),
    resumeRule: (req, ctx) => rules.resumeRule(accessOf(ctx), req.name),
    previewRule: (req, ctx) => rules.previewRule(accessOf(ctx), req),
    listRuleRuns: (req, ctx) => rules.listRuleRuns(accessOf(ctx), req),
  };
}
