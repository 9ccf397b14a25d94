import type { Message, MessageInitShape } from "@bufbuild/protobuf";
import type { CommandSchema } from "../../../gen/tether/v1/command_pb.js";

export type CommandInit = MessageInitShape<typeof CommandSchema>;

/** One desired-state flag a product offers to `devices create|update`, e.g. `--brightness 0-100`. */
export interface DesiredFlag {
  /** The flag without dashes; products may share one (`power`, `mode`), each parsing its own values. */
  readonly name: string;
  /** What it takes, for usage lines: `0-100`, `solid|blink|breathe|rainbow`. */
  readonly usage: string;
}

/**
 * How people type a product's commands and desired state (the CLI's words), both ways. Pure: no
 * I/O, so every front end can share it. Errors are thrown as `Error` with a one-line message that
 * names what is expected.
 */
export interface CommandWords {
  /** Other names users may type for the kind besides `kindName`, e.g. `coffee`. */
  readonly aliases: readonly string[];
  /** The action words `parse` accepts, e.g. `power`, `brightness`. */
  readonly actions: readonly string[];
  /** One line: `power on|off · brightness 0-100 · …`. */
  readonly usage: string;
  /** One typical command, for help texts: `brightness 80`. */
  readonly example: string;
  /** `<action> [value]` → a whole Command whose case is this product's. */
  parse(action: string, value: string | undefined): CommandInit;
  /** This product's command (the `Command.kind` value) as the words a user would type. */
  describe(command: Message): string;
  /** This product's `CommandResult.kind` value in words; "" if there is nothing to say. */
  describeResult(result: Message): string;
  /** The desired-state flags of `devices create|update`. */
  readonly desiredFlags: readonly DesiredFlag[];
  /**
   * The desired state from flag values (only the flags given are set) and the paths it sets,
   * relative to the desired message (`brightness`). Flags not in `desiredFlags` are the caller's.
   */
  parseDesired(flags: Readonly<Record<string, string | undefined>>): { desired: Message; paths: string[] };
}

/** `on`/`off` for commands. */
export function parseOnOff(action: string, v: string): boolean {
  if (v !== "on" && v !== "off") throw new Error(`${action} ${v}: expected on or off`);
  return v === "on";
}

/** Desired-state power is more lenient: also true/false and 1/0. */
export function parsePowerFlag(v: string): boolean {
  if (["on", "true", "1"].includes(v)) return true;
  if (["off", "false", "0"].includes(v)) return false;
  throw new Error(`--power ${v}: expected on or off`);
}

/** The value an action needs, or an error naming the action's usage. */
export function need(action: string, value: string | undefined, usage: string): string {
  if (value === undefined) throw new Error(`${action}: missing value\n${usage}`);
  return value;
}

/** An enum value from its short lower-case name (`breathe` → `LED_MODE_BREATHE`'s number), or undefined. */
export function enumByShortName(values: Record<string, unknown>, name: string): number | undefined {
  const n = values[name.toUpperCase()];
  return typeof n === "number" ? n : undefined;
}

/** The short lower-case name of an enum value (`LedMode.BREATHE` → `breathe`), or its number. */
export function enumShortName(values: Record<string | number, unknown>, n: number): string {
  const name = values[n];
  return typeof name === "string" ? name.toLowerCase() : String(n);
}

/** Throws unless `v` is a whole number ≥ 0 (a uint32 field), naming `expected`. */
export function parseUint(what: string, v: string, expected: string): number {
  const n = Number(v);
  if (v.trim() === "" || !Number.isInteger(n) || n < 0) throw new Error(`${what} ${v}: expected ${expected}`);
  return n;
}
