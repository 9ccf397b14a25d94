import type { Command, CommandResult } from "../../gen/tether/v1/command_pb.js";
import { anyProduct } from "./products/index.js";

export type { CommandInit } from "./products/product.js";

/** One line for a command, in the words the CLI prints and parses (core `words.describe`): `brew latte:large`. */
export function describeCommand(c: Command | undefined): string {
  if (!c) return "—";
  const k = c.kind;
  return k.case === undefined ? "(empty command)" : anyProduct(k.case).describeCommand(k.value);
}

/** What a task's result adds to its row (`250 ml`), or "". */
export function describeResult(r: CommandResult | undefined): string {
  const k = r?.kind;
  return k?.case === undefined ? "" : (anyProduct(k.case).describeResult?.(k.value) ?? "");
}
