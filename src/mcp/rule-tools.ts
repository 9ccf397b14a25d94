import { RuleSchema } from "../../gen/tether/v1/rule_pb.js";
import { RuleService } from "../../gen/tether/v1/rule_service_pb.js";
import { messageSchema, toolInput } from "./json-schema.js";
import { call, methodTool, requestFrom, type ToolDef } from "./tool.js";

const m = RuleService.method;
/** Fields of a Rule the server sets: not offered to an agent creating one. */
const RULE_OUTPUT = ["name", "uid", "next_fire_time", "last_fire_time", "create_time", "update_time", "etag", "creator"];

/** Rules: list, create, pause and resume, and when a cron expression would fire. */
export const ruleTools: ToolDef[] = [
  methodTool(m.listRules, {
    name: "list_rules",
    description: "List rules (schedules, one-shots, event and alarm rules) you may see, with their next fire time and whether paused.",
    inputSchema: toolInput(m.listRules.input, { pick: ["page_size", "page_token"] }),
    annotations: { title: "List rules", readOnlyHint: true },
  }),
  methodTool(m.createRule, {
    name: "create_rule",
    description:
      'Create a rule: a trigger (cron {"expression","time_zone"}, one_shot_time or event_trigger), a target (device, selector or job) and a command. Check cron with preview_cron first.',
    inputSchema: toolInput(m.createRule.input, {
      pick: ["rule_id"],
      extra: { rule: messageSchema(RuleSchema, { omit: RULE_OUTPUT }) },
      required: ["rule"],
    }),
    annotations: { title: "Create a rule", destructiveHint: false },
  }),
  methodTool(m.pauseRule, {
    name: "pause_rule",
    description: "Pause a rule (`rules/{rule}`): it stops firing until resumed.",
    inputSchema: toolInput(m.pauseRule.input, { pick: ["name"], required: ["name"] }),
    annotations: { title: "Pause a rule", idempotentHint: true, destructiveHint: false },
  }),
  methodTool(m.resumeRule, {
    name: "resume_rule",
    description: "Resume a paused rule (`rules/{rule}`).",
    inputSchema: toolInput(m.resumeRule.input, { pick: ["name"], required: ["name"] }),
    annotations: { title: "Resume a rule", idempotentHint: true, destructiveHint: false },
  }),
  {
    name: "preview_cron",
    description:
      'The next fire times of a cron expression (e.g. "0 7 * * 1-5") in a time zone (default UTC), or of a stored rule (`name`: rules/{rule}); creates nothing.',
    inputSchema: toolInput(m.previewRule.input, {
      pick: ["name", "count", "start_time"],
      extra: { expression: { type: "string", description: "five or six cron fields" }, time_zone: { type: "string", description: "IANA, e.g. Europe/Paris" } },
    }),
    annotations: { title: "Preview a schedule", readOnlyHint: true },
    run: (api, args, signal) => {
      const { expression, time_zone, ...rest } = args;
      const rule = expression === undefined ? undefined : { cron: { expression, time_zone: time_zone ?? "" } };
      return call(api, m.previewRule, requestFrom(m.previewRule.input, { ...rest, ...(rule ? { rule } : {}) }), signal);
    },
  },
];
