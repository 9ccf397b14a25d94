import type { DescEnum, MessageInitShape } from "@bufbuild/protobuf";
import type { Command, CommandResult, CommandSchema } from "../../../gen/tether/v1/command_pb.js";
import type { ProductCase } from "../../../src/core/products/index.js";

// No React here: the command logic is tested under Node (tests/unit/console-logic.test.ts).

export type CommandInit = MessageInitShape<typeof CommandSchema>;

/** The value of `Command.kind` for one case (`LedCommand`, ...). */
export type CommandKindValue<C extends ProductCase> = Extract<Command["kind"], { case: C }>["value"];
/** The value of `CommandResult.kind` for one case. */
export type ResultKindValue<C extends ProductCase> = Extract<CommandResult["kind"], { case: C }>["value"];

/** One input of a command form, rendered by the shared command editor as `command-<name>`. */
export type CommandField =
  | { name: string; label: string; type: "on-off" }
  | { name: string; label: string; type: "number"; min?: number; max?: number; step?: number }
  | { name: string; label: string; type: "color" }
  /** `unset` labels value 0 (UNSPECIFIED) when it is a valid choice ("recipe default"). */
  | { name: string; label: string; type: "enum"; enum: DescEnum; unset?: string };

/** One thing a product can be told to do as a task, with the inputs it needs. */
export interface CommandAction {
  name: string;
  label: string;
  fields: readonly CommandField[];
}

export type DraftValue = string | number | boolean;

/** A command form's state: the chosen action and the value of every field by name. */
export interface CommandDraft {
  action: string;
  values: Record<string, DraftValue>;
}

/** The commands of a product as forms build and lists describe them (pure: testable without a DOM). */
export interface ProductCommands<C extends ProductCase = ProductCase> {
  /** The commands a rule (or any command form) can send; the first is the default. */
  readonly actions: readonly CommandAction[];
  /** The initial value of every command field. */
  readonly draftDefaults: Readonly<Record<string, DraftValue>>;
  /** The `Command` for a form's draft (its action is one of `actions`). */
  buildCommand(d: CommandDraft): CommandInit;
  /** One line for a command, as the CLI prints it: `brew latte:large`, `color #ff0000` (core `words.describe`). */
  describeCommand(c: CommandKindValue<C>): string;
  /** What a succeeded task's result adds to its row (`250 ml`), if anything. */
  describeResult?(r: ResultKindValue<C>): string | undefined;
}
