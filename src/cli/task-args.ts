import type { CommandInit } from "../core/products/command-words.js";
import { DEFAULT_PRIORITY, MAX_PRIORITY } from "../core/tasks/task-record.js";
import { usageError } from "./cli-error.js";
import { productOf, TASK_ACTIONS } from "./kinds.js";

export { TASK_ACTIONS };

/**
 * Builds a Command from `<action> [value]` for a device of kind `kind` (a kind name or alias),
 * with that product's command words.
 */
export function commandFromArgs(kind: string, action: string | undefined, value: string | undefined): CommandInit {
  const product = productOf(kind);
  if (!action || !product.words.actions.includes(action)) {
    throw new Error(`unknown action "${action ?? ""}" for kind ${product.kindName}: expected ${product.words.usage}`);
  }
  return product.words.parse(action, value);
}

/** `30s`, `5m`, `2h`, `1d` or plain seconds → a Duration init. */
export function parseDuration(v: string): { seconds: bigint; nanos: number } {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(v);
  if (!m) throw new Error(`duration ${v}: expected e.g. 500ms, 30s, 5m, 2h, 1d`);
  const unit = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? "s") as "s"];
  const secs = Number(m[1]) * unit;
  return { seconds: BigInt(Math.floor(secs)), nanos: Math.round((secs % 1) * 1e9) };
}

/** What `--priority` takes, for usage texts. */
export const PRIORITY_HELP = `--priority N   0 (lowest) to ${MAX_PRIORITY} (highest), unset ${DEFAULT_PRIORITY}: queued tasks go out highest first`;

/**
 * `--priority N` → the priority, undefined when unset (the server's default). Checked here, before
 * any call, so a typo is a usage error (exit 2) of `helpOf` (`tether tasks`) and nothing is created.
 */
export function priorityFromFlag(v: string | undefined, helpOf: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) > MAX_PRIORITY) throw usageError(`--priority ${v.slice(0, 20)}: expected 0 (lowest) to ${MAX_PRIORITY} (highest)`, helpOf);
  return Number(v);
}
