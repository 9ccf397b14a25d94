import type { DescMessage, Message } from "@bufbuild/protobuf";
import type { Device } from "../../../gen/tether/v1/device_pb.js";
import { ProductKind } from "../../../gen/tether/v1/device_pb.js";
import type { Violations } from "../errors.js";
import type { CommandWords } from "./command-words.js";
import type { SimBehaviourFactory } from "./sim-behaviour.js";

/** The `Device.kind` oneof cases: one per product type. */
export type ProductCase = Exclude<Device["kind"]["case"], undefined>;

/**
 * What Tether knows about one product type. Adding a product means its proto file and its arms in the
 * shared oneofs, one module implementing this interface (with its words and simulator), registered in
 * `index.ts`, and its console module; `npm run new-product -- <kind>` writes the skeleton of all of it.
 */
export interface Product {
  /** The `Device.kind` case, e.g. `coffeeMachine`. */
  readonly case: ProductCase;
  /** The stable name used in storage, filters and CLIs, e.g. `coffee_machine` (the proto field name). */
  readonly kindName: string;
  readonly productKind: ProductKind;
  /** How people name one of these, lower case unless a proper noun: `LED`, `coffee machine`. */
  readonly label: string;
  /** The plural, for lists and selectors: `LEDs`, `coffee machines`. */
  readonly pluralLabel: string;
  /**
   * The telemetry metrics this product sends (besides the link metrics every device may send, see
   * `LINK_METRICS`): what event rules, charts and the CLI offer for it.
   */
  readonly metrics: readonly MetricInfo[];
  /** The product message (`Led`), which holds `desired` and `reported`. */
  readonly schema: DescMessage;
  /** The desired-state message (`LedState`, `CoffeeMachineDesired`). */
  readonly desiredSchema: DescMessage;
  /** The reported-state message. */
  readonly reportedSchema: DescMessage;
  /** How people type this product's commands and desired state (the CLI's words). */
  readonly words: CommandWords;
  /** Checks a desired state, adding violations under `field` (e.g. `device.led.desired`). */
  validateDesired(desired: Message, field: string, v: Violations): void;
  /**
   * Checks this product's command (the value of `Command.kind` whose case equals `case`), adding
   * violations under `field` (e.g. `task.command.led`).
   */
  validateCommand(command: Message, field: string, v: Violations): void;
  /** How a simulated one behaves (`src/sim/` puts it on the network): demos, integration and load tests. */
  readonly sim: SimBehaviourFactory;
}

/** One telemetry metric a product sends. */
export interface MetricInfo {
  /** The sample's `metric`, e.g. `temperature_celsius`. */
  readonly name: string;
  /** The unit as shown to people: `°C`, `%`, `W`, `dBm`. */
  readonly unit: string;
  /** What it measures, one short phrase. */
  readonly description: string;
  /** The plausible range, for chart axes and rule hints (not enforced on ingest). */
  readonly min?: number;
  readonly max?: number;
}

export { ProductKind };
