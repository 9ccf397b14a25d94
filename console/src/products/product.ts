import type { ComponentType, ReactNode } from "react";
import type { Device } from "../../../gen/tether/v1/device_pb.js";
import type { Task } from "../../../gen/tether/v1/task_pb.js";
import type { Product, ProductCase } from "../../../src/core/products/index.js";
import type { ProductCommands } from "./command-form.js";

export type { ProductCase };
export type * from "./command-form.js";

/** The value of `Device.kind` for one case: the product message (`Led`, `Thermostat`). */
export type DeviceKindValue<C extends ProductCase> = Extract<Device["kind"], { case: C }>["value"];

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
