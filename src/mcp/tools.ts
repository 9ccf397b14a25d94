import { alarmAuditTools } from "./alarm-audit-tools.js";
import { deviceTools } from "./device-tools.js";
import { jobTools } from "./job-tools.js";
import { ruleTools } from "./rule-tools.js";
import { taskTools } from "./task-tools.js";
import { telemetryTools } from "./telemetry-tools.js";
import type { ToolDef } from "./tool.js";

/** Every tool the MCP server offers, in the order `tools/list` gives them. */
export const TOOLS: readonly ToolDef[] = [...deviceTools, ...taskTools, ...telemetryTools, ...ruleTools, ...jobTools, ...alarmAuditTools];
