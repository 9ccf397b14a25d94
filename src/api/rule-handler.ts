import { create } from "@bufbuild/protobuf";
import { EmptySchema } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { RuleService as RuleServiceDesc } from "../../gen/tether/v1/rule_service_pb.js";
import type { RuleService } from "../core/rules/rule-service.js";

/** RuleService over Connect/gRPC: a thin shell; validation and scheduling live in the core. */
export function ruleHandler(rules: RuleService): ServiceImpl<typeof RuleServiceDesc> {
  return {
    createRule: (req) => rules.createRule(req),
    getRule: (req) => rules.getRule(req.name),
    listRules: (req) => rules.listRules(req),
    updateRule: (req) => rules.updateRule(req),
    async deleteRule(req) {
      await rules.deleteRule(req);
      return create(EmptySchema);
    },
    pauseRule: (req) => rules.pauseRule(req.name),
    resumeRule: (req) => rules.resumeRule(req.name),
    previewRule: (req) => rules.previewRule(req),
    listRuleRuns: (req) => rules.listRuleRuns(req),
  };
}
