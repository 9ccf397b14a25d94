import type { DescEnum, MessageInitShape } from "@bufbuild/protobuf";
import type { ComponentType, ReactNode } from "react";
import type { Command, CommandResult, CommandSchema } from "../../../gen/tether/v1/command_pb.js";
import type { Device } from "../../../gen/tether/v1/device_pb.js";
import type { Task } from "../../../gen/tether/v1/task_pb.js";
import type { Product, ProductCase } from "../../../src/core/products/index.js";

export type { ProductCase };

export type CommandInit = MessageInitShape<typeof CommandSchema>;

/** The value of `Device.kind` for one case: the product message (`Led`, `Thermostat`). */
export type DeviceKindValue<C extends ProductCase> = Extract<Device["kind"], { case: C }>["value"];
/** The value of `Command.kind` for one case (`LedCommand`, ...). */
export type CommandKindValue<C extends ProductCase> = Extract<Command["kind"], { case: C }>["value"];
/** The value of `CommandResult.kind` for one case. */
export type ResultKindValue<C extends ProductCase> = Extract<CommandResult["kind"], { case: C }>["value"];

/** What a product's controls get: the device, its product message, and where to report changes. */
export interface ControlsProps<C extends ProductCase = ProductCase> {
  device: Device;
  value: DeviceKindValue<C>;
  /** The device after a successful update, to show at once. */
  onUpdated(d: Device): void;
  /** A task the controls created, to show at once. */
  onTask(t: Task): void;
}

/** One row of the device page's state table; `desired` is "" for what only the device reports. */
export type StateRow = [label: string, desired: ReactNode, reported: ReactNode];

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
  /** One line for a command, as the CLI prints it: `brew latte large`, `color #ff0000`. */
  describeCommand(c: CommandKindValue<C>): string;
  /** What a succeeded task's result adds to its row (`250 ml`), if anything. */
  describeResult?(r: ResultKindValue<C>): string | undefined;
}

/**
 * The console's side of a product type: the shared facts (label, metrics, ...) come from the
 * server's product module, the rest is how the console shows and controls it. Methods (not
 * function properties) so that a `ConsoleProduct<"led">` fits in the table of all products.
 */
export interface ConsoleProduct<C extends ProductCase = ProductCase> extends ProductCommands<C> {
  /** The server's product module (its `case` is this product's key in the table, checked there). */
  readonly core: Product;
  /** The controls on the device page: desired-state inputs and buttons that create tasks. */
  readonly Controls: ComponentType<ControlsProps<C>>;
  /** The state table: desired and reported side by side where the product has both. */
  stateRows(value: DeviceKindValue<C>): StateRow[];
  /** An example device id for forms. */
  readonly exampleDeviceId: string;
}
